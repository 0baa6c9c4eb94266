package bench

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/data"
)

// paperSecondsPerPair is the cost of one CLEVR pair in the Vision-Zero paper: 2,000 pairs rendered
// with Blender in about 6 A100-hours.
const paperSecondsPerPair = 6 * 3600.0 / 2000

// BenchmarkDataCLEVR measures CLEVR pairs per second, PNG files included, at two sizes with one
// worker and with every core, and reports the speed-up over the paper's Blender rendering.
//
//	./scripts/go test ./bench/ -run '^$' -bench DataCLEVR -benchtime 40x
func BenchmarkDataCLEVR(b *testing.B) {
	defer quietLogs()()
	for _, size := range [][2]int{{320, 240}, {480, 320}} {
		for _, workers := range []int{1, runtime.NumCPU()} {
			b.Run(fmt.Sprintf("%dx%d/workers=%d", size[0], size[1], workers), func(b *testing.B) {
				out := b.TempDir()
				cpu0 := cpuSeconds()
				b.ResetTimer()
				rep, err := data.GenerateCLEVR(out, data.CLEVROptions{N: b.N, Seed: 7, Width: size[0], Height: size[1], Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				if rep.Written != b.N {
					b.Fatalf("wrote %d pairs, want %d", rep.Written, b.N)
				}
				perSec := float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(perSec, "pairs/s")
				b.ReportMetric(perSec*paperSecondsPerPair, "x_paper")
				// CPU seconds per pair: on a shared machine the wall clock measures the neighbours,
				// this measures us (pairs are independent, so W free cores make W/cpu_s pairs/s)
				b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1000, "cpu_ms/pair")
			})
		}
	}
}

// BenchmarkDataCLEVRRender is the renderer alone (no files), one pair per iteration.
func BenchmarkDataCLEVRRender(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, _, _, err := data.RenderCLEVRPair(i, data.CLEVROptions{Seed: 7}); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuSeconds is the user+system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// BenchmarkDataCharts measures chart pairs per second with every core, files included.
func BenchmarkDataCharts(b *testing.B) {
	defer quietLogs()()
	out := b.TempDir()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	if _, err := data.GenerateCharts(out, data.ChartOptions{N: b.N, Seed: 7}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1000, "cpu_ms/pair")
}

// quietLogs silences the per-pair debug lines for the length of a benchmark.
func quietLogs() (restore func()) {
	old := zerolog.GlobalLevel()
	zerolog.SetGlobalLevel(zerolog.InfoLevel)
	return func() { zerolog.SetGlobalLevel(old) }
}

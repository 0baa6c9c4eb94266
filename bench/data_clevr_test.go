package bench

import (
	"fmt"
	"runtime"
	"testing"

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
	for _, size := range [][2]int{{320, 240}, {480, 320}} {
		for _, workers := range []int{1, runtime.NumCPU()} {
			b.Run(fmt.Sprintf("%dx%d/workers=%d", size[0], size[1], workers), func(b *testing.B) {
				out := b.TempDir()
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

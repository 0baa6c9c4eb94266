package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"image"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden_pairs.json")

// goldenPair is one pair as the format promises it: its JSON record and the hashes of its PNGs.
type goldenPair struct {
	Pair     *Pair  `json:"pair"`
	Original string `json:"original_png_sha256"`
	Modified string `json:"modified_png_sha256"`
}

// TestGoldenPairs pins the pair format and the pictures: a change to the renderer, the chart
// drawing or the JSON fields shows up here and must be deliberate (rerun with -update). The image
// hashes are checked on amd64 only: other architectures may fuse floating-point multiply-adds and
// move a pixel by one level.
func TestGoldenPairs(t *testing.T) {
	var got []goldenPair
	add := func(p *Pair, a, b image.Image) {
		ha, hb := pngHash(t, a), pngHash(t, b)
		got = append(got, goldenPair{Pair: p, Original: ha, Modified: hb})
	}
	p, a, b, err := RenderCLEVRPair(0, CLEVROptions{Seed: 1, Width: 160, Height: 120})
	require.NoError(t, err)
	add(p, a, b)
	for i := 0; i < 3; i++ {
		p, a, b, err := RenderChartPair(i, ChartOptions{Seed: 1})
		require.NoError(t, err)
		add(p, a, b)
	}
	const path = "testdata/golden_pairs.json"
	if *update {
		js, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(js, '\n'), 0o644))
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	var want []goldenPair
	require.NoError(t, json.Unmarshal(raw, &want))
	require.Len(t, got, len(want))
	for i := range want {
		wj, _ := json.Marshal(want[i].Pair)
		gj, _ := json.Marshal(got[i].Pair)
		require.JSONEq(t, string(wj), string(gj), "pair %d record", i)
		if runtime.GOARCH == "amd64" {
			require.Equal(t, want[i].Original, got[i].Original, "pair %d original image", i)
			require.Equal(t, want[i].Modified, got[i].Modified, "pair %d modified image", i)
		}
	}
}

func pngHash(t *testing.T, img image.Image) string {
	var buf bytes.Buffer
	require.NoError(t, pngEncoder.Encode(&buf, img))
	s := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(s[:])
}

package report

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		min, max float64
		labels   []string
	}{
		{1, 120, []string{"20", "40", "60", "80", "100", "120"}},
		{0, 1, []string{"0", "0.2", "0.4", "0.6", "0.8", "1"}},
		{0, 2650, []string{"0", "500", "1000", "1500", "2000", "2500"}},
		{-0.1, 1.3, []string{"0", "0.25", "0.5", "0.75", "1", "1.25"}},
		{0, 0.11, []string{"0", "0.02", "0.04", "0.06", "0.08", "0.1"}},
		{-3, -1, []string{"-3", "-2.5", "-2", "-1.5", "-1"}},
		{0, 3e-5, []string{"0", "5e-06", "1e-05", "1.5e-05", "2e-05", "2.5e-05", "3e-05"}},
	}
	for _, tc := range tests {
		var labels []string
		for _, tk := range (niceTicks{}).Ticks(tc.min, tc.max) {
			assert.GreaterOrEqual(t, tk.Value, tc.min-1e-12)
			assert.LessOrEqual(t, tk.Value, tc.max+1e-12)
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		assert.Equal(t, tc.labels, labels, "[%g, %g]", tc.min, tc.max)
	}
	// A degenerate range gets one labelled tick rather than a loop or a panic.
	assert.Equal(t, "3", (niceTicks{}).Ticks(3, 3)[0].Label)
}

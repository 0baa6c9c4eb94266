package optim

import (
	"math"
	"strings"
	"testing"
)

func TestGroupAdvantages(t *testing.T) {
	grpo := AdvantageConfig{Estimator: AdvGRPO}
	tests := []struct {
		name    string
		rewards []float64
		cfg     AdvantageConfig
		want    []float64
		tol     float64
		zeroStd bool
	}{
		// mean 0.5, population std 0.5.
		{"grpo population", []float64{1, 0, 0, 1}, grpo, []float64{1, -1, -1, 1}, 1e-12, false},
		// sample std sqrt(1/3) = 0.5773503: 0.5/0.5773503 = 0.8660254.
		{"grpo sample std", []float64{1, 0, 0, 1}, AdvantageConfig{Estimator: AdvGRPO, UnbiasedStd: true},
			[]float64{0.8660254, -0.8660254, -0.8660254, 0.8660254}, 1e-7, false},
		// eps 1: 0.5/(0.5+1).
		{"grpo eps", []float64{1, 0}, AdvantageConfig{Estimator: AdvGRPO, Eps: 1}, []float64{1.0 / 3, -1.0 / 3}, 1e-12, false},
		{"dr grpo", []float64{1, 0, 0, 1}, AdvantageConfig{Estimator: AdvDrGRPO}, []float64{0.5, -0.5, -0.5, 0.5}, 1e-12, false},
		// games.md 1.3 golden vector (official Vision-Zero decision rewards, population std +
		// 1e-8), given there to 4 decimals.
		{"vision-zero golden", []float64{2.49, 2.49, 1.89, -0.30, -0.90, -0.90, -1.50, -0.90},
			AdvantageConfig{Estimator: AdvGRPO, Eps: 1e-8},
			[]float64{1.3861, 1.3861, 1.0070, -0.3767, -0.7558, -0.7558, -1.1349, -0.7558}, 5e-5, false},
		// Equal rewards whose mean is not exactly representable still give exact zeros.
		{"zero std", []float64{0.1, 0.1, 0.1}, AdvantageConfig{Estimator: AdvGRPO, Eps: 1e-8}, []float64{0, 0, 0}, 0, true},
		{"zero std dr", []float64{-1, -1}, AdvantageConfig{Estimator: AdvDrGRPO}, []float64{0, 0}, 0, true},
		{"single", []float64{3}, AdvantageConfig{Estimator: AdvGRPO, UnbiasedStd: true}, []float64{0}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adv, zero, err := GroupAdvantages(tc.rewards, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if zero != tc.zeroStd {
				t.Errorf("zeroStd = %v, want %v", zero, tc.zeroStd)
			}
			for i := range tc.want {
				if math.Abs(adv[i]-tc.want[i]) > tc.tol {
					t.Errorf("A[%d] = %.9g, want %.9g", i, adv[i], tc.want[i])
				}
			}
		})
	}
}

func TestGroupAdvantagesErrors(t *testing.T) {
	tests := []struct {
		name    string
		rewards []float64
		cfg     AdvantageConfig
		want    string
	}{
		{"empty", nil, AdvantageConfig{Estimator: AdvGRPO}, "empty group"},
		{"unknown", []float64{1}, AdvantageConfig{Estimator: "rloo"}, "unknown estimator"},
		{"negative eps", []float64{1}, AdvantageConfig{Estimator: AdvGRPO, Eps: -1}, "eps"},
		{"NaN reward", []float64{1, math.NaN()}, AdvantageConfig{Estimator: AdvGRPO}, "reward[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := GroupAdvantages(tc.rewards, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

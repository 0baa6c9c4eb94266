package optim

import "testing"

func TestConvert(t *testing.T) {
	if Float64s(nil) != nil {
		t.Error("Float64s(nil) must stay nil")
	}
	got := Float64s([]float32{1.5, -2})
	if len(got) != 2 || got[0] != 1.5 || got[1] != -2 {
		t.Errorf("Float64s = %v", got)
	}
	w := PGResult{Weights: [][]float64{{0.25, -1}, {}}}.Weights32()
	if len(w) != 2 || len(w[0]) != 2 || w[0][0] != 0.25 || w[0][1] != -1 || len(w[1]) != 0 {
		t.Errorf("Weights32 = %v", w)
	}
}

package optim

// The gradient engine speaks float32 (lora.Engine: LogProbs and Backward weights); the
// objective is computed in float64 so that its derivative can be checked tightly. These two
// helpers are the boundary.

// Float64s widens a float32 slice (nil stays nil, so optional log-probs stay absent).
func Float64s(xs []float32) []float64 {
	if xs == nil {
		return nil
	}
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// Weights32 returns the per-token weights rounded to float32, shaped for the engine's Backward.
func (r PGResult) Weights32() [][]float32 {
	out := make([][]float32, len(r.Weights))
	for i, ws := range r.Weights {
		out[i] = make([]float32, len(ws))
		for t, w := range ws {
			out[i][t] = float32(w)
		}
	}
	return out
}

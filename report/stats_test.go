package report

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWilsonKnownValues(t *testing.T) {
	// Reference values: the brief's four (7/10, 50/100, 0/10, 10/10) and the closed form
	// evaluated independently in Python to 4 decimals.
	tests := []struct {
		wins, games int
		low, high   float64
	}{
		{7, 10, 0.3968, 0.8922},
		{50, 100, 0.4038, 0.5962},
		{0, 10, 0, 0.2775},
		{10, 10, 0.7225, 1},
		{71, 100, 0.6146, 0.7899},
		{1, 1, 0.2065, 1},
		{0, 0, 0, 1},
	}
	for _, tc := range tests {
		low, high, err := Wilson(tc.wins, tc.games, Z95)
		require.NoError(t, err)
		assert.InDelta(t, tc.low, low, 5e-5, "%d/%d low", tc.wins, tc.games)
		assert.InDelta(t, tc.high, high, 5e-5, "%d/%d high", tc.wins, tc.games)
		assert.GreaterOrEqual(t, low, 0.0)
		assert.LessOrEqual(t, high, 1.0)
	}
}

func TestWilsonRejectsImpossibleCounts(t *testing.T) {
	for _, c := range [][2]int{{11, 10}, {-1, 10}, {0, -1}} {
		_, _, err := Wilson(c[0], c[1], Z95)
		assert.Error(t, err, "%v", c)
	}
}

func TestWilsonNarrowsWithGames(t *testing.T) {
	prev := math.Inf(1)
	for _, n := range []int{10, 40, 160, 640} {
		low, high, err := Wilson(n/2, n, Z95)
		require.NoError(t, err)
		w := high - low
		assert.Less(t, w, prev, "n=%d", n)
		assert.InDelta(t, 0.5, (low+high)/2, 1e-12, "symmetric at p=1/2")
		prev = w
	}
}

func TestWinTallyPerRole(t *testing.T) {
	// The paper's protocol: 50 games as spy, 50 as civilians.
	var w WinTally
	for i := 0; i < 50; i++ {
		w.Add("spy", i < 30)      // 30/50
		w.Add("civilian", i < 41) // 41/50
	}
	total := w.Total()
	assert.Equal(t, Tally{Wins: 71, Games: 100}, total)
	assert.InDelta(t, 0.71, total.Rate(), 1e-12)
	assert.Equal(t, []string{"civilian", "spy"}, w.Roles())
	assert.Equal(t, Tally{Wins: 30, Games: 50}, w.Role("spy"))
	assert.Equal(t, Tally{}, w.Role("observer"))
	assert.Equal(t, 0.0, w.Role("observer").Rate())

	rec := w.Record(120)
	assert.Equal(t, 120, rec.Step)
	assert.Equal(t, 100, rec.Games)
	assert.Equal(t, 71, rec.Wins)
	assert.InDelta(t, 0.6146, rec.Low, 5e-5)
	assert.InDelta(t, 0.7899, rec.High, 5e-5)
	spy := rec.Roles["spy"]
	assert.InDelta(t, 0.6, spy.WinRate, 1e-12)
	low, high, _ := Wilson(30, 50, Z95)
	assert.Equal(t, low, spy.Low)
	assert.Equal(t, high, spy.High)
	require.NoError(t, rec.Validate())
}

func TestEvalRecordValidate(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		wantErr string
	}{
		{"complete", `{"step":5,"games":10,"wins":7,"win_rate":0.7,"low":0.3968,"high":0.8922}`, ""},
		{"counts only are completed", `{"step":5,"games":10,"wins":7}`, ""},
		{"more wins than games", `{"step":5,"games":10,"wins":11}`, "11 wins out of 10"},
		{"no games", `{"step":5,"games":0,"wins":0}`, "no games"},
		{"rate disagrees", `{"step":5,"games":10,"wins":7,"win_rate":0.5,"low":0.2,"high":0.8}`, "win_rate 0.5000"},
		{"interval misses rate", `{"step":5,"games":10,"wins":7,"win_rate":0.7,"low":0.8,"high":0.9}`, "interval"},
		{"bad role", `{"step":5,"games":10,"wins":7,"roles":{"spy":{"games":2,"wins":3}}}`, `role "spy"`},
		{"interval not Wilson", `{"step":5,"games":10,"wins":7,"win_rate":0.7,"low":0.6,"high":0.8}`, "Wilson 95% interval of 7/10 is [0.3968, 0.8922]"},
		{"role rate disagrees", `{"step":5,"games":10,"wins":7,"roles":{"spy":{"games":4,"wins":3,"win_rate":0.25,"low":0.1,"high":0.9}}}`, `role "spy": win_rate 0.2500 but 3/4`},
		{"role interval not Wilson", `{"step":5,"games":10,"wins":7,"roles":{"spy":{"games":4,"wins":3,"win_rate":0.75,"low":0.7,"high":0.8}}}`, `role "spy": interval`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r EvalRecord
			require.NoError(t, json.Unmarshal([]byte(tc.line), &r))
			err := r.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				assert.InDelta(t, 0.7, r.WinRate, 1e-12)
				assert.InDelta(t, 0.3968, r.Low, 5e-5)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestEvalRecordRoundTrip(t *testing.T) {
	var w WinTally
	w.Add("spy", true)
	w.Add("civilian", false)
	rec := w.Record(3)
	line, err := rec.MarshalLine()
	require.NoError(t, err)
	assert.Equal(t, byte('\n'), line[len(line)-1])
	var back EvalRecord
	require.NoError(t, json.Unmarshal(line, &back))
	assert.Equal(t, rec, back)
}

func TestEvalRecordsFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), EvalFile)
	var recs []EvalRecord
	for step := 50; step >= 10; step -= 20 {
		var w WinTally
		for g := 0; g < 20; g++ {
			w.Add([]string{"spy", "civilian"}[g%2], g < step/5)
		}
		recs = append(recs, w.Record(step))
	}
	require.NoError(t, WriteEvalRecords(path, recs))
	back, err := ReadEvalRecords(path)
	require.NoError(t, err)
	require.Len(t, back, 3)
	assert.Equal(t, []int{10, 30, 50}, []int{back[0].Step, back[1].Step, back[2].Step}, "sorted by step")
	assert.Equal(t, recs[2], back[0])

	bad := recs[0]
	bad.Wins = 30
	err = WriteEvalRecords(path, []EvalRecord{recs[0], bad})
	require.ErrorContains(t, err, "record 2")
	back, err = ReadEvalRecords(path)
	require.NoError(t, err)
	assert.Len(t, back, 3, "a refused write leaves the old file")
}

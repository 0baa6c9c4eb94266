package selfplay

import "math"

// summarizeQS computes a played step's numbers (QSSummary documents each).
func summarizeQS(res *QSStep, images int) QSSummary {
	s := QSSummary{Kind: QSKindStep, Step: res.Step, Stage: res.Stage, Images: images, Questions: len(res.Records)}
	var conf, qrewards []float64
	var answers, abstain, agree, scored int
	for _, r := range res.Records {
		if r.Valid {
			s.Valid++
		}
		if r.Reward != nil {
			qrewards = append(qrewards, *r.Reward)
		}
		for _, v := range r.Votes {
			answers++
			if _, ok := qsOptionLetter(v.Answer); !ok {
				abstain++
			}
		}
		switch {
		case r.Vote != nil:
			conf = append(conf, r.Vote.Confidence)
			for _, v := range r.Votes {
				scored++
				if QSSameAnswer(v.Answer, r.Quick) {
					agree++
				}
			}
		case r.Label != nil:
			conf = append(conf, r.Label.Confidence)
			if r.Label.Keep {
				s.Kept++
			}
		}
		for _, a := range r.Solver {
			answers++
			if _, ok := qsOptionLetter(a.Answer); !ok {
				abstain++
			}
			scored++
			if a.Reward == 1 {
				agree++
			}
		}
	}
	s.ValidRate = qsRatio(s.Valid, s.Questions)
	s.MeanConfidence, _ = MeanStd(conf)
	s.KeptFraction = qsRatio(s.Kept, s.Valid)
	s.QuestionerRewardMean, s.QuestionerRewardStd = MeanStd(qrewards)
	s.SolverAccuracy = qsRatio(agree, scored)
	s.AbstainRate = qsRatio(abstain, answers)

	var trained []float64
	var zero int
	for _, g := range res.Groups {
		trained = append(trained, g.Rewards...)
		if g.ZeroStd {
			zero++
		}
	}
	s.Groups, s.Samples = len(res.Groups), len(trained)
	s.RewardMean, s.RewardStd = MeanStd(trained)
	s.FracZeroStd = qsRatio(zero, len(res.Groups))
	return s
}

func qsRatio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// MeanStd is the mean and population standard deviation (0, 0 for no values).
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}

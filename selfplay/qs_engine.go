package selfplay

import (
	"context"
	"fmt"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/optim"
)

// QSEngine plays V-Zero's Questioner/Solver game (games.md section 2) with Policies. It holds no
// state between calls; a step's images and step number decide what it plays.
//
// A Questioner step: PlayQuestioner(ctx, questioner, solver, images, step) samples G_Q questions
// per image in one Complete call, lets the frozen Solver answer every valid question m times in
// one more call, scores each question with the dual-track reward (-1 if invalid) and normalises
// the rewards within each image's group. A Solver step: PlaySolver(ctx, questioner, previous,
// solver, images, step) samples one question per image, lets the previous Solver (the stage's
// starting snapshot) answer it for a pseudo-label, keeps the questions whose confidence passes the
// filter, and samples G_S answers of the current Solver per kept question, rewarded 1 when they
// equal the label. Either way the result's Groups are what the trainer trains on.
type QSEngine struct {
	Settings QSSettings
	Prompts  *QSPrompts
	// OnRecord, when set, is called with each question's record once it is scored, in image
	// and question order: `vzlocal play` uses it to show the game as it goes.
	OnRecord func(r *QSRecord)
}

// NewQSEngine checks the settings and the prompts.
func NewQSEngine(s QSSettings, p *QSPrompts) (*QSEngine, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("qs game: no prompts")
	}
	return &QSEngine{Settings: s, Prompts: p}, nil
}

// QSImage is one image of the unlabeled pool.
type QSImage struct {
	ID   string
	Path string
	// Pair is the pair the image came from, if any: the scripted policy reads its Items
	// instead of looking at the image. Model backends never see it.
	Pair *data.Pair
}

// QSImagesOfPairs returns the pairs' original images: the Questioner/Solver game's pool.
func QSImagesOfPairs(pairs []*data.Pair) []QSImage {
	out := make([]QSImage, 0, len(pairs))
	for _, p := range pairs {
		if p != nil {
			out = append(out, QSImage{ID: p.ID, Path: p.OriginalPath(), Pair: p})
		}
	}
	return out
}

// QSTruth is Request.Truth for the game's calls: what the scripted policy reads instead of the
// image. Model backends ignore it.
type QSTruth struct {
	Image QSImage
	Step  int
	Slot  int
	Index int // the question's index within its image's group (Solver requests)
	// Question is the question a Solver request asks (nil for the Questioner).
	Question *QSQuestion
}

// QSGroup is one GRPO group: the samples of one prompt with their rewards and advantages.
type QSGroup struct {
	ID          string
	Request     Request
	Completions []Completion
	Rewards     []float64
	Advantages  []float64
	ZeroStd     bool // all rewards equal: advantages are zero
}

// QSStep is one played step.
type QSStep struct {
	Step    int
	Stage   string
	Records []*QSRecord
	Groups  []QSGroup
	Summary QSSummary
	Rollout Rollout
}

// PlayQuestioner plays a Questioner step on images: questioner writes G_Q questions per image,
// solver (frozen during the stage) answers each valid one m times.
func (e *QSEngine) PlayQuestioner(ctx context.Context, questioner, solver Policy, images []QSImage, step int) (*QSStep, error) {
	s := e.Settings
	if err := qsCheckImages(images); err != nil {
		return nil, err
	}
	res := &QSStep{Step: step, Stage: StageQuestioner}
	qreqs, qouts, err := e.askQuestions(ctx, questioner, images, step, s.Questions, &res.Rollout)
	if err != nil {
		return nil, err
	}
	var sreqs []Request
	var asked []*QSRecord // the record of each solver request
	for i, img := range images {
		for k, c := range qouts[i] {
			r := e.newRecord(StageQuestioner, step, i, k, img, c)
			res.Records = append(res.Records, r)
			if !r.Valid {
				continue
			}
			q := qsParsed(r)
			req, err := e.solverRequest(img, step, i, k, q, s.SolverVotes)
			if err != nil {
				return nil, err
			}
			sreqs, asked = append(sreqs, req), append(asked, r)
		}
	}
	souts, err := callPolicy(ctx, solver, sreqs, &res.Rollout)
	if err != nil {
		return nil, fmt.Errorf("qs step %d: solver: %w", step, err)
	}
	for j, r := range asked {
		r.Votes = qsAnswers(souts[j])
		reward, vote, err := QSQuestionerReward(r.Quick, qsAnswerStrings(r.Votes))
		if err != nil {
			return nil, fmt.Errorf("qs step %d, image %s: %w", step, r.ImageID, err)
		}
		r.Vote, r.Reward = qsVoteRecord(vote), qsFloat(reward)
	}
	for i := range images {
		recs := res.Records[i*s.Questions : (i+1)*s.Questions]
		g := QSGroup{ID: fmt.Sprintf("step%d/questioner/%d", step, i), Request: qreqs[i]}
		for _, r := range recs {
			if !r.Valid {
				r.Reward = qsFloat(QSInvalidReward)
			}
			g.Completions = append(g.Completions, r.completion)
			g.Rewards = append(g.Rewards, *r.Reward)
		}
		if err := e.advantages(&g); err != nil {
			return nil, err
		}
		for k, r := range recs {
			r.Advantage = qsFloat(g.Advantages[k])
		}
		res.Groups = append(res.Groups, g)
	}
	e.report(res)
	res.Summary = summarizeQS(res, len(images))
	return res, nil
}

// PlaySolver plays a Solver step on images: questioner (trained, frozen during the stage) writes
// one question per image; previous (the Solver at the stage's start) labels it with LabelVotes
// answers; solver answers each kept question G_S times.
func (e *QSEngine) PlaySolver(ctx context.Context, questioner, previous, solver Policy, images []QSImage, step int) (*QSStep, error) {
	s := e.Settings
	if err := qsCheckImages(images); err != nil {
		return nil, err
	}
	res := &QSStep{Step: step, Stage: StageSolver}
	_, qouts, err := e.askQuestions(ctx, questioner, images, step, 1, &res.Rollout)
	if err != nil {
		return nil, err
	}
	var lreqs []Request
	var asked []*QSRecord
	for i, img := range images {
		r := e.newRecord(StageSolver, step, i, 0, img, qouts[i][0])
		res.Records = append(res.Records, r)
		if !r.Valid {
			continue
		}
		req, err := e.solverRequest(img, step, i, 0, qsParsed(r), s.LabelVotes)
		if err != nil {
			return nil, err
		}
		lreqs, asked = append(lreqs, req), append(asked, r)
	}
	louts, err := callPolicy(ctx, previous, lreqs, &res.Rollout)
	if err != nil {
		return nil, fmt.Errorf("qs step %d: previous solver: %w", step, err)
	}
	var sreqs []Request
	var kept []*QSRecord
	for j, r := range asked {
		r.Votes = qsAnswers(louts[j])
		label, err := QSPseudoLabel(qsAnswerStrings(r.Votes), s.MinConfidence, s.MaxConfidence)
		if err != nil {
			return nil, fmt.Errorf("qs step %d, image %s: %w", step, r.ImageID, err)
		}
		r.Label = qsLabelRecord(label)
		if !label.Keep {
			continue
		}
		req := lreqs[j]
		req.N = s.SolverSamples
		sreqs, kept = append(sreqs, req), append(kept, r)
	}
	souts, err := callPolicy(ctx, solver, sreqs, &res.Rollout)
	if err != nil {
		return nil, fmt.Errorf("qs step %d: solver: %w", step, err)
	}
	for j, r := range kept {
		g := QSGroup{ID: fmt.Sprintf("step%d/solver/%d", step, r.Slot), Request: sreqs[j], Completions: souts[j]}
		r.Solver = qsAnswers(souts[j])
		for k := range r.Solver {
			reward, err := QSSolverReward(r.Solver[k].Text, r.Label.Label)
			if err != nil {
				return nil, fmt.Errorf("qs step %d, image %s: %w", step, r.ImageID, err)
			}
			r.Solver[k].Reward = reward
			g.Rewards = append(g.Rewards, reward)
		}
		if err := e.advantages(&g); err != nil {
			return nil, err
		}
		for k := range r.Solver {
			r.Solver[k].Advantage = g.Advantages[k]
		}
		res.Groups = append(res.Groups, g)
	}
	e.report(res)
	res.Summary = summarizeQS(res, len(images))
	return res, nil
}

func (e *QSEngine) report(res *QSStep) {
	if e.OnRecord == nil {
		return
	}
	for _, r := range res.Records {
		e.OnRecord(r)
	}
}

// advantages fills g.Advantages with GRPO advantages (games.md section 2: eps 1e-6).
func (e *QSEngine) advantages(g *QSGroup) error {
	adv, zero, err := optim.GroupAdvantages(g.Rewards, optim.AdvantageConfig{
		Estimator: optim.AdvGRPO, Eps: e.Settings.AdvEps, UnbiasedStd: e.Settings.AdvUnbiasedStd,
	})
	if err != nil {
		return fmt.Errorf("qs group %s: %w", g.ID, err)
	}
	g.Advantages, g.ZeroStd = adv, zero
	return nil
}

// askQuestions has questioner write n questions for every image (one request per image).
// It returns the requests (the groups' prompts) and the completions.
func (e *QSEngine) askQuestions(ctx context.Context, questioner Policy, images []QSImage, step, n int, roll *Rollout) ([]Request, [][]Completion, error) {
	reqs := make([]Request, len(images))
	for i, img := range images {
		r, err := e.questionRequest(img, step, i, n)
		if err != nil {
			return nil, nil, err
		}
		reqs[i] = r
	}
	outs, err := callPolicy(ctx, questioner, reqs, roll)
	if err != nil {
		return nil, nil, fmt.Errorf("qs step %d: questioner: %w", step, err)
	}
	return reqs, outs, nil
}

func (e *QSEngine) questionRequest(img QSImage, step, slot, n int) (Request, error) {
	user, err := e.Prompts.Render(QSQuestionerPrompt, QSPromptData{})
	if err != nil {
		return Request{}, err
	}
	st := e.Settings.Question
	return Request{
		User: user, Image: img.Path, N: n, Role: RoleQuestioner,
		Temperature: st.Temperature, MaxTokens: st.MaxTokens,
		Truth: &QSTruth{Image: img, Step: step, Slot: slot},
	}, nil
}

func (e *QSEngine) solverRequest(img QSImage, step, slot, index int, q *QSQuestion, n int) (Request, error) {
	user, err := e.Prompts.Render(QSSolverPrompt, QSPromptData{Question: q.Question})
	if err != nil {
		return Request{}, err
	}
	st := e.Settings.Answer
	return Request{
		User: user, Image: img.Path, N: n, Role: RoleSolver,
		Temperature: st.Temperature, MaxTokens: st.MaxTokens,
		Truth: &QSTruth{Image: img, Step: step, Slot: slot, Index: index, Question: q},
	}, nil
}

func (e *QSEngine) newRecord(stage string, step, slot, index int, img QSImage, c Completion) *QSRecord {
	r := &QSRecord{
		Kind: QSKindQuestion, Step: step, Stage: stage, ImageID: img.ID, Image: img.Path,
		Slot: slot, Index: index, Output: c.Text, completion: c,
	}
	q, err := QSParseQuestion(c.Text)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Valid, r.Question, r.Quick = true, q.Question, q.Answer
	return r
}

// qsParsed re-parses a valid record's output (cheap) so requests carry the whole QSQuestion.
func qsParsed(r *QSRecord) *QSQuestion {
	q, _ := QSParseQuestion(r.Output)
	return &q
}

func qsCheckImages(images []QSImage) error {
	if len(images) == 0 {
		return fmt.Errorf("qs game: no images to play on")
	}
	for i, img := range images {
		if img.Path == "" {
			return fmt.Errorf("qs game: image %d (%q) has no path", i, img.ID)
		}
	}
	return nil
}

func qsAnswers(cs []Completion) []QSAnswer {
	out := make([]QSAnswer, len(cs))
	for i, c := range cs {
		out[i] = QSAnswer{Text: c.Text, Answer: QSExtractAnswer(c.Text)}
	}
	return out
}

func qsAnswerStrings(as []QSAnswer) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Answer
	}
	return out
}

func qsFloat(x float64) *float64 { return &x }

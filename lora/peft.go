package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
)

// PEFT export/import: adapter_model.safetensors + adapter_config.json with the Hugging Face module
// names of the same architecture. lora_A.weight is [rank][in] and lora_B.weight is [out][rank],
// exactly our A and B, with one exception:
//
// llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders the rows of the llama
// arch's q and k projections so that its adjacent-pair RoPE (NORM) equals HF's rotate_half RoPE on
// the original rows: GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i (j in {0,1}, i < hd/2,
// h over heads; KV heads for k). The output rows of B live in that permuted space, so B of attn_q and
// attn_k is un-permuted on export and permuted on import. A (input side) is unchanged. qwen2 GGUFs
// are not permuted (llama.cpp uses NEOX RoPE for them).

// Module paths of the decoder layers inside the Hugging Face model PEFT wraps: a causal LM
// (Qwen2ForCausalLM, LlamaForCausalLM, ...), the language model of a VLM in transformers >= 4.52
// (Qwen2-VL, Qwen2.5-VL, LLaVA, Gemma 3, InternVL: XForConditionalGeneration.model.language_model)
// and Idefics3/SmolVLM's text model. PEFT prefixes tensor names with "base_model.model.".
const (
	PEFTLayersText     = "model.layers"
	PEFTLayersVLM      = "model.language_model.layers"
	PEFTLayersIdefics3 = "model.text_model.layers"
)

// peftModulePath matches a module path as written before ".N.self_attn...": dotted identifiers.
var peftModulePath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

var hfModule = map[string]string{
	"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
	"attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
	"ffn_down": "mlp.down_proj",
}

func ggufTarget(hf string) (string, bool) {
	for k, v := range hfModule {
		if v == hf || shortName(v) == hf { // the full module path or the short name (q_proj)
			return k, true
		}
	}
	return "", false
}

// shortName is the last component of a module path: "self_attn.q_proj" -> "q_proj".
func shortName(module string) string { return module[strings.LastIndexByte(module, '.')+1:] }

// permuteRows returns HF -> GGUF row order (inverse=false) or GGUF -> HF (inverse=true) for a
// [heads*hd][cols] matrix.
func permuteRows(w []float32, heads, hd, cols int, inverse bool) []float32 {
	out := make([]float32, len(w))
	half := hd / 2
	for h := 0; h < heads; h++ {
		for j := 0; j < 2; j++ {
			for i := 0; i < half; i++ {
				hfRow := h*hd + j*half + i
				ggRow := h*hd + 2*i + j
				src, dst := hfRow, ggRow
				if inverse {
					src, dst = ggRow, hfRow
				}
				copy(out[dst*cols:(dst+1)*cols], w[src*cols:(src+1)*cols])
			}
		}
	}
	return out
}

// permutedHeads says whether B of a target is stored permuted in the GGUF, and over how many heads.
func permutedHeads(cfg Config, target string) (int, bool) {
	if cfg.Arch != "llama" {
		return 0, false
	}
	switch target {
	case "attn_q":
		return cfg.NHead, true
	case "attn_k":
		return cfg.NHeadKV, true
	}
	return 0, false
}

type peftConfig struct {
	BaseModel     string         `json:"base_model_name_or_path"`
	PeftType      string         `json:"peft_type"`
	TaskType      string         `json:"task_type"`
	R             int            `json:"r"`
	LoraAlpha     float64        `json:"lora_alpha"`
	LoraDropout   float64        `json:"lora_dropout"`
	TargetModules targetModules  `json:"target_modules"`
	Bias          string         `json:"bias"`
	FanInFanOut   bool           `json:"fan_in_fan_out"`
	InferenceMode bool           `json:"inference_mode"`
	UseRSLoRA     bool           `json:"use_rslora"`
	RankPattern   map[string]any `json:"rank_pattern,omitempty"`
	AlphaPattern  map[string]any `json:"alpha_pattern,omitempty"`
}

// targetModules is PEFT's target_modules: a list of module names (each matched as the last
// components of a module path) or one regular expression (matched against the whole path).
type targetModules struct {
	Names []string
	Regex string
}

func (t targetModules) MarshalJSON() ([]byte, error) {
	if t.Regex != "" {
		return json.Marshal(t.Regex)
	}
	return json.Marshal(t.Names)
}

func (t *targetModules) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &t.Regex)
	}
	return json.Unmarshal(b, &t.Names)
}

// WritePEFT writes adapter_model.safetensors and adapter_config.json into dir (atomically each).
// baseModel is recorded as base_model_name_or_path; layers is the decoder layers' module path in
// the HF model ("" = PEFTLayersText). Inside a VLM, target_modules is a regular expression over
// the language model's layers: a list of names would also match the vision tower's q_proj etc.
func (a *Adapter) WritePEFT(dir string, cfg Config, baseModel, layers string) error {
	if err := a.CheckModel(cfg); err != nil {
		return fmt.Errorf("write PEFT adapter: %w", err)
	}
	if layers == "" {
		layers = PEFTLayersText
	}
	if !peftModulePath.MatchString(layers) {
		return fmt.Errorf("write PEFT adapter: layers module path %q is not a dotted module path like %s", layers, PEFTLayersVLM)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write PEFT adapter: %w", err)
	}
	var ts []stTensor
	for _, p := range a.Pairs {
		name := fmt.Sprintf("base_model.model.%s.%d.%s", layers, p.Layer, hfModule[p.Target])
		b := p.B
		if heads, ok := permutedHeads(cfg, p.Target); ok {
			b = permuteRows(b, heads, cfg.HeadDim, a.Rank, true)
		}
		ts = append(ts,
			stTensor{Name: name + ".lora_A.weight", Shape: []int{a.Rank, p.In}, Data: p.A},
			stTensor{Name: name + ".lora_B.weight", Shape: []int{p.Out, a.Rank}, Data: b})
	}
	pc := peftConfig{BaseModel: baseModel, PeftType: "LORA", TaskType: "CAUSAL_LM", R: a.Rank,
		LoraAlpha: float64(a.Alpha), Bias: "none", InferenceMode: true}
	if a.Alpha == 0 { // PEFT always scales by lora_alpha/r; alpha 0 is llama.cpp's scale 1
		pc.LoraAlpha = float64(a.Rank)
	}
	var modules []string
	for _, t := range a.Targets {
		modules = append(modules, hfModule[t])
	}
	if layers == PEFTLayersText {
		for _, m := range modules {
			pc.TargetModules.Names = append(pc.TargetModules.Names, shortName(m))
		}
	} else {
		pc.TargetModules.Regex = regexp.QuoteMeta(layers) + `\.\d+\.(` + strings.ReplaceAll(strings.Join(modules, "|"), ".", `\.`) + ")"
	}
	js, err := json.MarshalIndent(pc, "", "  ")
	if err != nil {
		return fmt.Errorf("write PEFT adapter: %w", err)
	}
	if err := writeSafetensors(filepath.Join(dir, "adapter_model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("write PEFT adapter: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, "adapter_config.json"), append(js, '\n'))
}

// visionModule matches the vision-tower module paths of HF VLMs (vision_tower, vision_model,
// visual, ...), whose encoder layers would otherwise pass for decoder layers.
var visionModule = regexp.MustCompile(`(^|\.)(vision_tower|vision_model|visual|vision_encoder|vpm)\.`)

var peftName = regexp.MustCompile(`layers\.(\d+)\.((?:self_attn|mlp)\.[a-z_]+)\.lora_([AB])\.weight$`)

// ReadPEFT reads a PEFT LoRA directory for a model of the given config.
func ReadPEFT(dir string, cfg Config) (*Adapter, error) {
	cfgPath := filepath.Join(dir, "adapter_config.json")
	js, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("read PEFT adapter: %w", err)
	}
	var pc peftConfig
	if err := json.Unmarshal(js, &pc); err != nil {
		return nil, fmt.Errorf("read PEFT adapter %s: %w", cfgPath, err)
	}
	if pc.PeftType != "" && pc.PeftType != "LORA" {
		return nil, fmt.Errorf("read PEFT adapter %s: peft_type %q, want LORA", cfgPath, pc.PeftType)
	}
	if pc.R <= 0 {
		return nil, fmt.Errorf("read PEFT adapter %s: rank r = %d must be positive", cfgPath, pc.R)
	}
	if len(pc.RankPattern) > 0 || len(pc.AlphaPattern) > 0 {
		return nil, fmt.Errorf("read PEFT adapter %s: per-module rank_pattern/alpha_pattern are not supported", cfgPath)
	}
	if pc.LoraAlpha == 0 {
		// PEFT's scale would be 0 (no effect at all), while alpha 0 means scale 1 to llama.cpp.
		return nil, fmt.Errorf("read PEFT adapter %s: lora_alpha is 0 (missing?): the adapter would have no effect", cfgPath)
	}
	alpha := pc.LoraAlpha
	if pc.UseRSLoRA { // rsLoRA scales by alpha/sqrt(r); express it as the alpha of a plain alpha/r scale
		alpha *= math.Sqrt(float64(pc.R))
	}
	stPath := filepath.Join(dir, "adapter_model.safetensors")
	ts, _, err := readSafetensors(stPath)
	if err != nil {
		return nil, fmt.Errorf("read PEFT adapter: %w", err)
	}
	ad := &Adapter{Arch: cfg.Arch, Rank: pc.R, Alpha: float32(alpha)}
	pairs := map[[2]int]*Pair{}
	for name, t := range ts {
		if visionModule.MatchString(name) {
			// PEFT's target_modules match by module name, so q_proj etc. of a VLM's vision tower
			// get adapters too; the engine adapts the language decoder only.
			return nil, fmt.Errorf("read PEFT adapter %s: tensor %s adapts the vision tower (only the language model's layers are supported)", stPath, name)
		}
		m := peftName.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("read PEFT adapter %s: tensor %s is not a decoder-layer LoRA weight", stPath, name)
		}
		il, _ := strconv.Atoi(m[1])
		target, ok := ggufTarget(m[2])
		if !ok {
			return nil, fmt.Errorf("read PEFT adapter %s: tensor %s: module %s not supported", stPath, name, m[2])
		}
		ti := slices.Index(Targets, target)
		p := pairs[[2]int{il, ti}]
		if p == nil {
			in, out, _ := cfg.LinearShape(target)
			p = &Pair{Name: fmt.Sprintf("blk.%d.%s.weight", il, target), Layer: il, Target: target, In: in, Out: out}
			pairs[[2]int{il, ti}] = p
		}
		if len(t.Shape) != 2 {
			return nil, fmt.Errorf("read PEFT adapter %s: tensor %s: shape %v is not 2-D", stPath, name, t.Shape)
		}
		if m[3] == "A" {
			if t.Shape[0] != pc.R || t.Shape[1] != p.In {
				return nil, fmt.Errorf("read PEFT adapter %s: tensor %s: shape %v, model wants [%d %d] (adapter for another model?)", stPath, name, t.Shape, pc.R, p.In)
			}
			p.A = t.Data
		} else {
			if t.Shape[0] != p.Out || t.Shape[1] != pc.R {
				return nil, fmt.Errorf("read PEFT adapter %s: tensor %s: shape %v, model wants [%d %d] (adapter for another model?)", stPath, name, t.Shape, p.Out, pc.R)
			}
			p.B = t.Data
			if heads, ok := permutedHeads(cfg, target); ok {
				p.B = permuteRows(p.B, heads, cfg.HeadDim, pc.R, false)
			}
		}
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("read PEFT adapter %s: no LoRA tensors", stPath)
	}
	for _, p := range pairs {
		if p.A == nil || p.B == nil {
			return nil, fmt.Errorf("read PEFT adapter %s: %s lacks lora_A or lora_B", stPath, p.Name)
		}
		ad.Pairs = append(ad.Pairs, p)
		if !slices.Contains(ad.Targets, p.Target) {
			ad.Targets = append(ad.Targets, p.Target)
		}
	}
	ad.sortPairs()
	if err := ad.CheckModel(cfg); err != nil {
		return nil, fmt.Errorf("read PEFT adapter %s: %w", dir, err)
	}
	return ad, nil
}

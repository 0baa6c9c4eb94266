package llm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ollama/ollama/fs/ggml"
)

// A vision projector (mmproj) file is checked for everything whose absence or wrong type makes
// llama.cpp's clip loader abort or segfault rather than fail (tiny-models.md §4-§6): the loader
// reads keys without checking their GGUF type, asserts on image_mean/std, and dereferences
// projector tensors it never checked for.

// projectorWidth says where clip_n_mmproj_embd (clip.cpp) reads the output width of each projector:
// dimension dim of tensor name.
type projectorWidth struct {
	tensor string
	dim    int
}

var projectorWidths = map[string]projectorWidth{
	"mlp":              {"mm.2.weight", 1}, // mm.3.bias[0] when mm.3.weight exists (mlp_norm)
	"ldp":              {"mm.model.mb_block.1.block.2.1.bias", 0},
	"ldpv2":            {"mm.model.peg.0.bias", 0},
	"resampler":        {"resampler.proj.weight", 0},
	"adapter":          {"adapter.linear.dense_4h_to_h.weight", 1},
	"qwen2vl_merger":   {"mm.2.bias", 0},
	"qwen2.5vl_merger": {"mm.2.bias", 0},
	"qwen3vl_merger":   {"mm.2.bias", 0}, // times 1 + deepstack layers
	"gemma3":           {"mm.input_projection.weight", 0},
	"idefics3":         {"mm.model.fc.weight", 1},
	"pixtral":          {"mm.2.weight", 1},
	"lightonocr":       {"mm.2.weight", 1},
	"lfm2":             {"mm.2.weight", 1},
	"kimivl":           {"mm.2.weight", 1},
	"internvl":         {"mm.model.mlp.3.weight", 1},
	"llama4":           {"mm.model.fc.weight", 1},
	"cogvlm":           {"mm.down.weight", 1},
	"glm4v":            {"mm.down.weight", 1},
	"janus_pro":        {"mm.1.bias", 0},
}

// projectorTensors lists tensors a projector type dereferences without checking (segfault if absent).
var projectorTensors = map[string][]string{
	"mlp":              {"v.position_embd.weight", "mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"},
	"qwen2vl_merger":   {"v.patch_embd.weight.1"},
	"qwen2.5vl_merger": {"v.patch_embd.weight.1"},
	"internvl":         {"v.class_embd", "v.position_embd.weight"},
}

// Keys the clip loader reads, by the GGUF type it assumes.
var (
	clipU32Keys = []string{
		"clip.vision.embedding_length", "clip.vision.attention.head_count", "clip.vision.feed_forward_length",
		"clip.vision.block_count", "clip.vision.projection_dim", "clip.vision.image_size", "clip.vision.patch_size",
	}
	clipOptionalU32Keys = []string{
		"clip.vision.image_crop_resolution", "clip.minicpmv_query_num", "clip.vision.projector.scale_factor",
		"clip.vision.preproc_image_size", "clip.vision.spatial_merge_size", "clip.vision.n_wa_pattern",
		"clip.vision.window_size",
	}
	clipOptionalBoolKeys   = []string{"clip.has_audio_encoder", "clip.use_gelu", "clip.use_silu"}
	clipOptionalStringKeys = []string{"clip.projector_type", "clip.vision.projector_type", "clip.vision.mm_patch_merge_type"}
)

// projInfo is what the engine needs to know about a checked projector.
type projInfo struct {
	projector string
}

func checkProjector(path string, text textInfo) (projInfo, error) {
	const kind = "mmproj"
	g, err := readHeader(kind, path, maxHeaderArray)
	if err != nil {
		return projInfo{}, err
	}
	kv := g.KV()
	bad := func(format string, args ...any) (projInfo, error) {
		return projInfo{}, fileErr(kind, path, format, args...)
	}
	if arch, _ := kv["general.architecture"].(string); arch != "clip" {
		return bad("not a vision projector: general.architecture is %q, want \"clip\"", arch)
	}
	if v, ok := kv["clip.has_vision_encoder"].(bool); !ok || !v {
		return bad("no vision encoder (clip.has_vision_encoder missing, false or not a bool)")
	}
	for _, k := range clipU32Keys {
		if _, ok := kv[k].(uint32); !ok {
			return bad("key %s %s", k, typeProblem(kv[k], "uint32"))
		}
	}
	if _, ok := kv["clip.vision.attention.layer_norm_epsilon"].(float32); !ok {
		return bad("key clip.vision.attention.layer_norm_epsilon %s", typeProblem(kv["clip.vision.attention.layer_norm_epsilon"], "float32"))
	}
	for _, k := range clipOptionalU32Keys {
		if v, present := kv[k]; present {
			if _, ok := v.(uint32); !ok {
				return bad("key %s %s", k, typeProblem(v, "uint32"))
			}
		}
	}
	for _, k := range clipOptionalBoolKeys {
		if v, present := kv[k]; present {
			if _, ok := v.(bool); !ok {
				return bad("key %s %s", k, typeProblem(v, "bool"))
			}
		}
	}
	for _, k := range clipOptionalStringKeys {
		if v, present := kv[k]; present {
			if _, ok := v.(string); !ok {
				return bad("key %s %s", k, typeProblem(v, "string"))
			}
		}
	}
	layers, err2 := checkClipIntArrays(kv)
	if err2 != "" {
		return bad("%s", err2)
	}
	for _, k := range []string{"image_mean", "image_std"} {
		// keyValue prefixes the architecture ("clip.") itself.
		if v := kv.Floats("vision." + k); len(v) < 3 {
			return bad("key clip.vision.%s %s", k, typeProblem(kv["clip.vision."+k], "array of 3 float32"))
		}
	}

	proj := "mlp" // the loader's default when the key is absent
	if p, ok := kv["clip.vision.projector_type"].(string); ok && p != "" {
		proj = p
	} else if p, ok := kv["clip.projector_type"].(string); ok && p != "" {
		proj = p
	}
	w, ok := projectorWidths[proj]
	if !ok {
		return bad("unsupported projector type %q (vision projectors: %s)", proj, strings.Join(sortedKeys(projectorWidths), ", "))
	}

	tensors := map[string]*ggml.Tensor{}
	for _, t := range g.Tensors().Items() {
		tensors[t.Name] = t
	}
	need := append([]string{"v.patch_embd.weight"}, projectorTensors[proj]...)
	for i := range int(kv["clip.vision.block_count"].(uint32)) {
		for _, n := range []string{"attn_q", "attn_k", "attn_v"} {
			need = append(need, fmt.Sprintf("v.blk.%d.%s.weight", i, n))
			if proj == "qwen2.5vl_merger" {
				need = append(need, fmt.Sprintf("v.blk.%d.%s.bias", i, n))
			}
		}
	}
	for _, n := range need {
		if tensors[n] == nil {
			return bad("missing tensor %s (needed by projector %q)", n, proj)
		}
	}
	if err := checkProjectorHparams(kv, tensors, proj, text.nEmbd); err != "" {
		return bad("%s", err)
	}
	if mm0 := tensors["mm.0.weight"]; proj == "mlp" && layers > 0 && mm0 != nil && len(mm0.Shape) == 2 {
		// the llava graph concatenates the feature layers' outputs before mm.0
		if w := int(kv["clip.vision.embedding_length"].(uint32)); int(mm0.Shape[0]) != layers*w {
			return bad("key clip.vision.feature_layer stacks %d layers of width %d, mm.0.weight takes %d", layers, w, mm0.Shape[0])
		}
	}

	if proj == "mlp" && tensors["mm.3.weight"] != nil {
		w = projectorWidth{"mm.3.bias", 0}
	}
	t := tensors[w.tensor]
	if t == nil || len(t.Shape) <= w.dim {
		return bad("missing tensor %s (projector %q reads its output width from it)", w.tensor, proj)
	}
	width := int(t.Shape[w.dim])
	if proj == "qwen3vl_merger" {
		n := 0
		for name := range tensors {
			if strings.HasPrefix(name, "v.deepstack.") && strings.HasSuffix(name, ".fc2.weight") {
				n++
			}
		}
		width *= 1 + n
	}
	if width != text.nEmbdInp {
		return bad("projector output width %d (%s) does not fit the text model's embedding width %d", width, w.tensor, text.nEmbdInp)
	}
	return projInfo{projector: proj}, nil
}

// checkProjectorHparams catches hyper-parameter combinations that abort inside clip.cpp.
func checkProjectorHparams(kv ggml.KV, tensors map[string]*ggml.Tensor, proj string, textEmbd int) string {
	imageSize := int(kv["clip.vision.image_size"].(uint32))
	patch := int(kv["clip.vision.patch_size"].(uint32))
	if patch == 0 || imageSize < patch {
		return fmt.Sprintf("clip.vision.patch_size %d does not fit clip.vision.image_size %d", patch, imageSize)
	}
	scale, hasScale := kv["clip.vision.projector.scale_factor"].(uint32)
	switch proj {
	case "idefics3":
		if !hasScale || scale < 2 {
			return "projector idefics3 needs clip.vision.projector.scale_factor > 1"
		}
	case "internvl":
		if !hasScale || scale < 1 {
			return "projector internvl needs clip.vision.projector.scale_factor > 0"
		}
	case "gemma3":
		if !hasScale {
			scale = 4
		}
		if scale == 0 || (imageSize/patch)%int(scale) != 0 {
			return fmt.Sprintf("projector gemma3: pooling kernel %d does not divide the patch grid %d", scale, imageSize/patch)
		}
	case "qwen2.5vl_merger":
		wa, ok := kv["clip.vision.n_wa_pattern"].(uint32)
		if !ok {
			return "projector qwen2.5vl_merger needs clip.vision.n_wa_pattern (uint32)"
		}
		// window attention reshapes by projection_dim: any other width aborts the warmup
		if pd := kv["clip.vision.projection_dim"].(uint32); wa > 0 && int(pd) != textEmbd {
			return fmt.Sprintf("projector qwen2.5vl_merger with window attention needs clip.vision.projection_dim %d (the text model's width), not %d", textEmbd, pd)
		}
	}
	if pe := tensors["v.position_embd.weight"]; pe != nil {
		switch proj {
		case "gemma3", "idefics3", "internvl":
			// added to the patches rather than gathered: any other type aborts in binary_op
			if pe.Kind != 0 {
				return fmt.Sprintf("v.position_embd.weight must be F32 for projector %q (is %s)", proj, pe.Type())
			}
		}
		if proj == "mlp" || proj == "internvl" {
			rows := (imageSize / patch) * (imageSize / patch)
			if tensors["v.class_embd"] != nil {
				rows++
			}
			if len(pe.Shape) < 2 || int(pe.Shape[1]) < rows {
				return fmt.Sprintf("v.position_embd.weight has %v rows, the %dx%d patch grid needs %d", pe.Shape, imageSize/patch, imageSize/patch, rows)
			}
		}
	}
	return ""
}

// checkClipIntArrays checks the two integer arrays the clip loader reads as raw int32 data
// whatever their GGUF type (get_arr_int): feature_layer indexes the encoder's blocks (a layer past
// the last one reads past the block list and aborts), image_grid_pinpoints is read in pairs. It
// returns how many distinct encoder layers feature_layer stacks (0 when not set).
func checkClipIntArrays(kv ggml.KV) (int, string) {
	blocks := int64(kv["clip.vision.block_count"].(uint32))
	stacked := map[int64]bool{}
	for _, k := range []string{"clip.vision.feature_layer", "clip.vision.image_grid_pinpoints"} {
		v, present := kv[k]
		if !present {
			continue
		}
		vals, ok := int32Values(v)
		if !ok {
			return 0, fmt.Sprintf("key %s %s", k, typeProblem(v, "array of int32"))
		}
		if vals == nil {
			continue // longer than the header reader keeps: the type is all that can be checked
		}
		if k == "clip.vision.image_grid_pinpoints" && len(vals)%2 != 0 {
			return 0, fmt.Sprintf("key %s has %d values, want (width, height) pairs", k, len(vals))
		}
		for _, x := range vals {
			if k == "clip.vision.feature_layer" {
				if x > blocks {
					return 0, fmt.Sprintf("key %s names layer %d, the vision encoder has %d blocks", k, x, blocks)
				}
				if x >= 0 {
					stacked[x] = true
				}
			}
			if k == "clip.vision.image_grid_pinpoints" && x <= 0 {
				return 0, fmt.Sprintf("key %s has a non-positive size %d", k, x)
			}
		}
	}
	return len(stacked), ""
}

// int32Values returns the values of a KV entry stored as 32-bit integers (an int32 or uint32 array,
// or a single such value, which the clip loader reads as an array of one), and false for any other
// type. The values are nil for an array too long for the header reader to keep.
func int32Values(v any) ([]int64, bool) {
	switch x := v.(type) {
	case int32:
		return []int64{int64(x)}, true
	case uint32:
		return []int64{int64(x)}, true
	}
	// fs/ggml's array type is unexported: recognise it by name and read it through MarshalJSON.
	if t := fmt.Sprintf("%T", v); t != "*ggml.array[int32]" && t != "*ggml.array[uint32]" {
		return nil, false
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var vals []int64
	if err := json.Unmarshal(js, &vals); err != nil {
		return nil, false
	}
	return vals, true
}

// typeProblem describes why a key's value is not of type want.
func typeProblem(v any, want string) string {
	if v == nil {
		return "is missing (want " + want + ")"
	}
	return fmt.Sprintf("has type %s, want %s", strings.TrimPrefix(fmt.Sprintf("%T", v), "*ggml."), want)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

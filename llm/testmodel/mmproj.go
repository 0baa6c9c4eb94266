package testmodel

import "fmt"

// The vision tower is the same small ViT for every family (tiny-models.md §4-§5): width 32, 2 heads,
// FFN 64 (kept != width: llama.cpp "un-swaps" legacy files whose ffn_down.ne[0] equals the width),
// 2 blocks, 8x8 patches.
const (
	visionEmbd   = 32
	visionHeads  = 2
	visionFFN    = 64
	visionBlocks = 2
	patchSize    = 8
)

var (
	clipMean   = []float32{0.48145466, 0.4578275, 0.40821073}
	clipStd    = []float32{0.26862954, 0.26130258, 0.27577711}
	siglipMean = []float32{0.5, 0.5, 0.5}
	imagenetMu = []float32{0.485, 0.456, 0.406}
	imagenetSd = []float32{0.229, 0.224, 0.225}
)

// projector holds what differs between the mmproj files of the families.
type projector struct {
	imageSize int
	mean, std []float32
	extraKV   map[string]any
	tensors   func(textEmbd int) []tensorSpec
}

// projectors are keyed by family name.
var projectors = map[string]projector{
	// LLaVA-1.5: CLIP ViT with a class token, pre-norm, penultimate-layer features, 2-layer MLP.
	// 32x32 input, 16 patches -> 16 embeddings.
	"llava": {
		imageSize: 32, mean: clipMean, std: clipStd,
		tensors: func(e int) []tensorSpec {
			n := (32/patchSize)*(32/patchSize) + 1 // + class token
			ts := []tensorSpec{
				weight("v.patch_embd.weight", patchSize, patchSize, 3, visionEmbd),
				f32(weight("v.class_embd", visionEmbd)),
				f32(weight("v.position_embd.weight", visionEmbd, n)),
				ones("v.pre_ln.weight", visionEmbd), zeros("v.pre_ln.bias", visionEmbd),
				weight("mm.0.weight", visionEmbd, e), bias("mm.0.bias", e),
				weight("mm.2.weight", e, e), bias("mm.2.bias", e),
			}
			return append(ts, vitLayers(vitLayerNorm)...)
		},
	},
	// Qwen2.5-VL: two temporal halves of a 3-D patch conv, RMS-norm SwiGLU ViT with window
	// attention, 2x2 patch merger. Dynamic resolution: a 40x30 image -> 12 embeddings.
	"qwen2vl": {
		imageSize: 32, mean: clipMean, std: clipStd,
		extraKV: map[string]any{
			"clip.vision.n_wa_pattern":       uint32(2),
			"clip.vision.spatial_merge_size": uint32(2),
			"clip.use_silu":                  true,
		},
		tensors: func(e int) []tensorSpec {
			m := 4 * visionEmbd
			ts := []tensorSpec{
				weight("v.patch_embd.weight", patchSize, patchSize, 3, visionEmbd),
				weight("v.patch_embd.weight.1", patchSize, patchSize, 3, visionEmbd),
				ones("v.post_ln.weight", visionEmbd),
				weight("mm.0.weight", m, m), bias("mm.0.bias", m),
				weight("mm.2.weight", m, e), bias("mm.2.bias", e),
			}
			return append(ts, vitLayers(vitRMSGated)...)
		},
	},
	// Gemma 3: SigLIP ViT, 4x4 average pooling, soft-embedding norm, projection stored [text, vision].
	// 64x64 input, 64 patches pooled to 4 embeddings.
	"gemma3": {
		imageSize: 64, mean: siglipMean, std: siglipMean,
		extraKV: map[string]any{"clip.use_gelu": true, "clip.vision.projector.scale_factor": uint32(4)},
		tensors: func(e int) []tensorSpec {
			ts := []tensorSpec{
				weight("v.patch_embd.weight", patchSize, patchSize, 3, visionEmbd),
				bias("v.patch_embd.bias", visionEmbd),
				f32(weight("v.position_embd.weight", visionEmbd, (64/patchSize)*(64/patchSize))),
				ones("v.post_ln.weight", visionEmbd), zeros("v.post_ln.bias", visionEmbd),
				weight("mm.input_projection.weight", e, visionEmbd),
				ones("mm.soft_emb_norm.weight", visionEmbd),
			}
			return append(ts, vitLayers(vitLayerNorm)...)
		},
	},
	// SmolVLM (idefics3): SigLIP ViT, pixel shuffle by 2, one linear layer. Images are sliced into
	// 32x32 tiles of a 64x64 canvas plus an overview: 5 tiles x 4 embeddings = 20 for a 40x30 image.
	"smolvlm": {
		imageSize: 32, mean: siglipMean, std: siglipMean,
		extraKV: map[string]any{
			"clip.use_gelu":                      true,
			"clip.vision.projector.scale_factor": uint32(2),
			"clip.vision.preproc_image_size":     uint32(64),
		},
		tensors: func(e int) []tensorSpec {
			ts := []tensorSpec{
				weight("v.patch_embd.weight", patchSize, patchSize, 3, visionEmbd),
				bias("v.patch_embd.bias", visionEmbd),
				f32(weight("v.position_embd.weight", visionEmbd, (32/patchSize)*(32/patchSize))),
				ones("v.post_ln.weight", visionEmbd), zeros("v.post_ln.bias", visionEmbd),
				weight("mm.model.fc.weight", visionEmbd*4, e),
			}
			return append(ts, vitLayers(vitLayerNorm)...)
		},
	},
	// InternVL3: InternViT with class token and layer scale, pixel shuffle by 2, LayerNorm + 2-layer
	// MLP. 32x32 input -> 4 embeddings between <img> and </img>.
	"internvl": {
		imageSize: 32, mean: imagenetMu, std: imagenetSd,
		extraKV: map[string]any{"clip.use_gelu": true, "clip.vision.projector.scale_factor": uint32(2)},
		tensors: func(e int) []tensorSpec {
			n := (32/patchSize)*(32/patchSize) + 1
			m := visionEmbd * 4
			ts := []tensorSpec{
				weight("v.patch_embd.weight", patchSize, patchSize, 3, visionEmbd),
				bias("v.patch_embd.bias", visionEmbd),
				f32(weight("v.class_embd", visionEmbd)),
				f32(weight("v.position_embd.weight", visionEmbd, n)),
				ones("mm.model.mlp.0.weight", m), zeros("mm.model.mlp.0.bias", m),
				weight("mm.model.mlp.1.weight", m, e), bias("mm.model.mlp.1.bias", e),
				weight("mm.model.mlp.3.weight", e, e), bias("mm.model.mlp.3.bias", e),
			}
			return append(ts, vitLayers(vitLayerNorm|vitLayerScale)...)
		},
	},
}

// vitStyle flags the variations of the ViT blocks.
type vitStyle int

const (
	vitLayerNorm  vitStyle = 1 << iota // LayerNorm with bias (otherwise RMS norm, weight only)
	vitRMSGated                        // RMS norm + SwiGLU FFN with a gate (Qwen2.5-VL)
	vitLayerScale                      // ls1/ls2 layer scale (InternViT)
)

func vitLayers(style vitStyle) []tensorSpec {
	d, ff := visionEmbd, visionFFN
	var ts []tensorSpec
	for i := range visionBlocks {
		p := fmt.Sprintf("v.blk.%d.", i)
		ts = append(ts,
			weight(p+"attn_q.weight", d, d), bias(p+"attn_q.bias", d),
			weight(p+"attn_k.weight", d, d), bias(p+"attn_k.bias", d),
			weight(p+"attn_v.weight", d, d), bias(p+"attn_v.bias", d),
			weight(p+"attn_out.weight", d, d), bias(p+"attn_out.bias", d),
			ones(p+"ln1.weight", d), ones(p+"ln2.weight", d),
			weight(p+"ffn_up.weight", d, ff), bias(p+"ffn_up.bias", ff),
			weight(p+"ffn_down.weight", ff, d), bias(p+"ffn_down.bias", d),
		)
		if style&vitLayerNorm != 0 {
			ts = append(ts, zeros(p+"ln1.bias", d), zeros(p+"ln2.bias", d))
		}
		if style&vitRMSGated != 0 {
			ts = append(ts, weight(p+"ffn_gate.weight", d, ff), bias(p+"ffn_gate.bias", ff))
		}
		if style&vitLayerScale != 0 {
			ts = append(ts, ones(p+"ls1.weight", d), ones(p+"ls2.weight", d))
		}
	}
	return ts
}

// mmprojKV returns the clip.* metadata (tiny-models.md §4). The clip loader reads values without
// checking their types, so a wrong Go type here would abort llama.cpp: keep uint32/float32/[]float32.
func mmprojKV(r resolved, p projector) map[string]any {
	kv := map[string]any{
		"general.architecture": "clip",
		"general.name":         fmt.Sprintf("vzlocal tiny %s mmproj (seed %d)", r.fam.name, r.Seed),
		"general.file_type":    fileTypes[r.kind],

		"clip.has_vision_encoder":                  true,
		"clip.projector_type":                      r.fam.projector,
		"clip.vision.image_size":                   uint32(p.imageSize),
		"clip.vision.patch_size":                   uint32(patchSize),
		"clip.vision.embedding_length":             uint32(visionEmbd),
		"clip.vision.feed_forward_length":          uint32(visionFFN),
		"clip.vision.block_count":                  uint32(visionBlocks),
		"clip.vision.attention.head_count":         uint32(visionHeads),
		"clip.vision.attention.layer_norm_epsilon": float32(1e-6),
		"clip.vision.projection_dim":               uint32(r.Embd),
		"clip.vision.image_mean":                   p.mean,
		"clip.vision.image_std":                    p.std,
	}
	for k, v := range p.extraKV {
		kv[k] = v
	}
	return kv
}

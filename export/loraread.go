package export

import (
	"fmt"

	"github.com/vzlocal/vzlocal/lora"
)

// loraConfig fills the shape fields of a lora.Config from a base GGUF's keys, so that package
// lora can read and check an adapter without loading (and dequantizing) the whole base model.
func loraConfig(base *ggufFile) (lora.Config, error) {
	arch := base.Arch()
	cfg := lora.Config{Arch: arch}
	req := func(key string) (int, error) {
		v, ok := base.Uint(arch + "." + key)
		if !ok || v == 0 {
			return 0, fmt.Errorf("base model %s: missing or non-integer key %s.%s", base.Path, arch, key)
		}
		return int(v), nil
	}
	var err error
	if cfg.NLayer, err = req("block_count"); err != nil {
		return cfg, err
	}
	if cfg.NEmbd, err = req("embedding_length"); err != nil {
		return cfg, err
	}
	if cfg.NFF, err = req("feed_forward_length"); err != nil {
		return cfg, err
	}
	if cfg.NHead, err = req("attention.head_count"); err != nil {
		return cfg, err
	}
	cfg.NHeadKV = cfg.NHead
	if v, ok := base.Uint(arch + ".attention.head_count_kv"); ok && v > 0 {
		cfg.NHeadKV = int(v)
	}
	cfg.HeadDim = cfg.NEmbd / cfg.NHead
	if v, ok := base.Uint(arch + ".attention.key_length"); ok && v > 0 {
		cfg.HeadDim = int(v)
	}
	return cfg, nil
}

// ReadAdapter reads an adapter GGUF through package lora, checked against the base model file
// (architecture, layer count and every shape), and returns it with its export description.
func ReadAdapter(adapterPath, basePath string) (*lora.Adapter, *Adapter, error) {
	base, err := readGGUF(basePath)
	if err != nil {
		return nil, nil, fmt.Errorf("base model: %w", err)
	}
	cfg, err := loraConfig(base)
	if err != nil {
		return nil, nil, err
	}
	la, err := lora.ReadAdapterGGUF(adapterPath, cfg)
	if err != nil {
		return nil, nil, err
	}
	ad := FromLoRA(la)
	if err := ad.checkBase(base); err != nil {
		return nil, nil, fmt.Errorf("adapter %s: %w", adapterPath, err)
	}
	return la, ad, nil
}

// FromLoRA describes a lora.Adapter for the exporters (the factor slices are shared, not copied).
func FromLoRA(a *lora.Adapter) *Adapter {
	ad := &Adapter{Arch: a.Arch, Alpha: a.Alpha}
	for _, p := range a.Pairs {
		ad.Pairs = append(ad.Pairs, Pair{
			Base: p.Name, A: p.A, B: p.B,
			AShape: [2]int{p.In, a.Rank}, BShape: [2]int{a.Rank, p.Out},
		})
	}
	return ad
}

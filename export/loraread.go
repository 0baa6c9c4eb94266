package export

import (
	"fmt"

	"github.com/vzlocal/vzlocal/lora"
)

// ReadAdapter reads an adapter GGUF through package lora, checked against the base model file
// (architecture, layer count and every shape), and returns it with its export description.
func ReadAdapter(adapterPath, basePath string) (*lora.Adapter, *Adapter, error) {
	la, ad, _, err := readAdapter(adapterPath, basePath)
	return la, ad, err
}

func readAdapter(adapterPath, basePath string) (*lora.Adapter, *Adapter, lora.Config, error) {
	base, err := readGGUF(basePath)
	if err != nil {
		return nil, nil, lora.Config{}, fmt.Errorf("base model: %w", err)
	}
	if base.String("general.type") == "adapter" {
		return nil, nil, lora.Config{}, fmt.Errorf("base model %s is a LoRA adapter, not a model (adapter and base swapped?)", basePath)
	}
	cfg, err := lora.ReadConfig(basePath) // header only: no weights are loaded
	if err != nil {
		return nil, nil, lora.Config{}, err
	}
	la, err := lora.ReadAdapterGGUF(adapterPath, cfg)
	if err != nil {
		return nil, nil, lora.Config{}, err
	}
	ad := FromLoRA(la)
	if err := ad.checkBase(base); err != nil {
		return nil, nil, lora.Config{}, fmt.Errorf("adapter %s: %w", adapterPath, err)
	}
	return la, ad, cfg, nil
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

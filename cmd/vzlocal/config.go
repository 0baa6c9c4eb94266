package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
	"gopkg.in/yaml.v3"
)

// configFile is a --config flag: a YAML or JSON file whose keys are the command's flag names
// (dashes or underscores; nested maps join with a dash, so `switch: {tau-acc-up: 0.9}` sets
// --switch-tau-acc-up). Flags given on the command line override the file. A key that names no
// flag is an error, because a misspelt hyper-parameter silently left at its default ruins a run.
type configFile string

func (c configFile) BeforeResolve(k *kong.Kong, ctx *kong.Context, trace *kong.Path) error {
	path := string(ctx.FlagValue(trace.Flag).(configFile))
	if path == "" {
		return nil
	}
	values, err := readConfigFile(path)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, group := range ctx.Flags() {
		known[group.Name] = true
	}
	var unknown []string
	for key := range values {
		if !known[key] {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config %s: unknown setting(s) %s (see --help for the names)", path, strings.Join(unknown, ", "))
	}
	ctx.AddResolver(kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
		if v, ok := values[flag.Name]; ok {
			return v, nil
		}
		return nil, nil
	}))
	return nil
}

// readConfigFile parses YAML (JSON is YAML) into flag-name -> value, normalising the values to
// what encoding/json produces, which kong's mappers understand.
func readConfigFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config %s: not YAML or JSON: %w", path, err)
	}
	flat := map[string]any{}
	if err := flatten("", raw, flat); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	j, err := json.Marshal(flat)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(j, &out); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return out, nil
}

func flatten(prefix string, in map[string]any, out map[string]any) error {
	for k, v := range in {
		key := strings.ReplaceAll(k, "_", "-")
		if prefix != "" {
			key = prefix + "-" + key
		}
		if m, ok := v.(map[string]any); ok {
			if err := flatten(key, m, out); err != nil {
				return err
			}
			continue
		}
		if _, dup := out[key]; dup {
			return fmt.Errorf("setting %s given twice", key)
		}
		out[key] = v
	}
	return nil
}

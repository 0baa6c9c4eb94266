package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"
)

type configTestCmd struct {
	Config configFile `help:"config"`
	Steps  int        `default:"10"`
	LR     float64    `name:"lr" default:"1e-5"`
	Switch struct {
		TauAccUp float64 `default:"0.9"`
	} `embed:"" prefix:"switch-"`
	Targets []string `default:"attn_q"`
}

func parseWithConfig(t *testing.T, file string, args ...string) (*configTestCmd, error) {
	t.Helper()
	var c struct {
		Run configTestCmd `cmd:""`
	}
	p, err := kong.New(&c, kong.Exit(func(int) { t.Fatal("exit") }))
	require.NoError(t, err)
	if file != "" {
		path := filepath.Join(t.TempDir(), "cfg.yaml")
		require.NoError(t, os.WriteFile(path, []byte(file), 0o644))
		args = append([]string{"--config", path}, args...)
	}
	_, err = p.Parse(append([]string{"run"}, args...))
	return &c.Run, err
}

func TestConfigFileAndFlagOverride(t *testing.T) {
	c, err := parseWithConfig(t, "steps: 20\nlr: 0.001\nswitch:\n  tau_acc_up: 0.8\ntargets: [attn_q, ffn_up]\n", "--steps", "30")
	require.NoError(t, err)
	require.Equal(t, 30, c.Steps, "flag must override file")
	require.Equal(t, 0.001, c.LR)
	require.Equal(t, 0.8, c.Switch.TauAccUp)
	require.Equal(t, []string{"attn_q", "ffn_up"}, c.Targets)
}

func TestConfigJSON(t *testing.T) {
	c, err := parseWithConfig(t, `{"steps": 7, "switch-tau-acc-up": 0.5}`)
	require.NoError(t, err)
	require.Equal(t, 7, c.Steps)
	require.Equal(t, 0.5, c.Switch.TauAccUp)
}

func TestConfigUnknownKey(t *testing.T) {
	_, err := parseWithConfig(t, "stepz: 20\n")
	require.ErrorContains(t, err, "unknown setting(s) stepz")
}

func TestConfigBadFile(t *testing.T) {
	_, err := parseWithConfig(t, "steps: [unclosed\n")
	require.ErrorContains(t, err, "not YAML or JSON")
	_, err = parseWithConfig(t, "", "--config", "/nonexistent.yaml")
	require.ErrorContains(t, err, "/nonexistent.yaml")
}

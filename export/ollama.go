package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/envconfig"
	"github.com/ollama/ollama/progress"
	"github.com/ollama/ollama/types/model"
	"github.com/rs/zerolog/log"
)

// OllamaModel is what `ollama create` needs for one model: the files and the chat settings.
type OllamaModel struct {
	Name     string
	Model    string // text GGUF
	MMProj   string // vision projector GGUF, "" for a text-only model
	Adapter  string // LoRA GGUF, "" for a merged model
	Template *ChatTemplate
}

// Blob names inside the create request. Ollama detects file types by the .gguf suffix and the
// projector by its keys, so fixed distinct names avoid two files called model.gguf colliding.
const (
	blobModel   = "model.gguf"
	blobMMProj  = "mmproj.gguf"
	blobAdapter = "adapter.gguf"
)

// OllamaClient connects to the server at host ("127.0.0.1:11434", "http://host:port"); an empty
// host means OLLAMA_HOST or the default, as the ollama CLI does.
func OllamaClient(host string) (*api.Client, *url.URL, error) {
	if host == "" {
		return api.NewClient(envconfig.Host(), http.DefaultClient), envconfig.Host(), nil
	}
	raw := host
	bare := !strings.Contains(raw, "://")
	if bare {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, nil, fmt.Errorf("--host %q is not a host:port or URL", host)
	}
	if bare && u.Port() == "" {
		// as OLLAMA_HOST=name does: a bare name means Ollama's port, not HTTP's 80
		u.Host = net.JoinHostPort(u.Hostname(), "11434")
	}
	return api.NewClient(u, http.DefaultClient), u, nil
}

// CreateInOllama creates m on the server: it uploads each file as a blob (skipping blobs the
// server already has, with a progress bar on out when out is not nil), then sends the create
// request with the files, the adapter, the template and the stop words — the request `ollama
// create` sends for a Modelfile with two FROM lines and an ADAPTER line (llama-cpp-notes §3.1).
func CreateInOllama(ctx context.Context, client *api.Client, base *url.URL, m OllamaModel, out io.Writer) error {
	if !model.ParseName(m.Name).IsValid() {
		return errBadName(m.Name)
	}
	if err := client.Heartbeat(ctx); err != nil {
		return errUnreachable(base, err)
	}
	var p *progress.Progress
	if out != nil {
		p = progress.NewProgress(out)
		defer p.Stop()
	}
	upload := func(path string) (string, error) {
		digest, err := fileDigest(path)
		if err != nil {
			return "", err
		}
		if has, err := hasBlob(ctx, base, digest); err == nil && has {
			log.Debug().Str("file", path).Str("digest", digest).Msg("blob already on the server")
			return digest, nil
		}
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return "", err
		}
		var r io.Reader = f
		if p != nil {
			bar := progress.NewBar("uploading "+filepath.Base(path), st.Size(), 0)
			p.Add(path, bar)
			r = &progressReader{r: f, set: bar.Set}
		}
		if err := client.CreateBlob(ctx, digest, r); err != nil {
			return "", fmt.Errorf("upload %s to Ollama: %w", path, err)
		}
		return digest, nil
	}

	req := &api.CreateRequest{Model: m.Name, Files: map[string]string{}}
	files := []struct{ path, name string }{{m.Model, blobModel}, {m.MMProj, blobMMProj}}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		d, err := upload(f.path)
		if err != nil {
			return err
		}
		req.Files[f.name] = d
	}
	if m.Adapter != "" {
		d, err := upload(m.Adapter)
		if err != nil {
			return err
		}
		req.Adapters = map[string]string{blobAdapter: d}
	}
	if m.Template != nil {
		req.Template = m.Template.Template
		if len(m.Template.Stop) > 0 {
			req.Parameters = map[string]any{"stop": m.Template.Stop}
		}
	}
	err := client.Create(ctx, req, func(r api.ProgressResponse) error {
		log.Info().Str("model", m.Name).Msg("ollama: " + r.Status)
		return nil
	})
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusBadRequest {
			return fmt.Errorf("Ollama refused to create %q: %s", m.Name, se.ErrorMessage)
		}
		return fmt.Errorf("ollama create %q: %w", m.Name, err)
	}
	return nil
}

// fileDigest is Ollama's blob name for a file: "sha256:<hex>".
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// hasBlob asks the server whether it already has a blob (HEAD /api/blobs/<digest>, which the api
// package does not wrap), so that a multi-gigabyte base is not uploaded twice.
func hasBlob(ctx context.Context, base *url.URL, digest string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base.JoinPath("/api/blobs/"+digest).String(), nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// progressReader reports bytes read so far.
type progressReader struct {
	r   io.Reader
	n   atomic.Int64
	set func(int64)
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.set(pr.n.Add(int64(n)))
	return n, err
}

func errBadName(name string) error {
	return fmt.Errorf("Ollama refuses the model name %q: want [host/][namespace/]model[:tag] of letters, digits, '_', '-' and '.'", name)
}

func errUnreachable(base *url.URL, err error) error {
	return fmt.Errorf("Ollama is not reachable at %s: %w (start it with `ollama serve`, or pass --host / set OLLAMA_HOST)", base, err)
}

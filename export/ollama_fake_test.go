package export

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// fakeOllama records what a client sends to the few endpoints the create flow uses.
type fakeOllama struct {
	mu       sync.Mutex
	blobs    map[string][]byte
	creates  []api.CreateRequest
	refuse   string // error message /api/create answers with status 400, if set
	uploaded []string
}

func (f *fakeOllama) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodHead && r.URL.Path == "/":
		w.WriteHeader(http.StatusOK)
	case strings.HasPrefix(r.URL.Path, "/api/blobs/"):
		digest := strings.TrimPrefix(r.URL.Path, "/api/blobs/")
		if r.Method == http.MethodHead {
			if _, ok := f.blobs[digest]; ok {
				w.WriteHeader(http.StatusOK)
			} else {
				w.WriteHeader(http.StatusNotFound)
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.blobs[digest] = b
		f.uploaded = append(f.uploaded, digest)
		w.WriteHeader(http.StatusCreated)
	case r.URL.Path == "/api/create":
		var req api.CreateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.creates = append(f.creates, req)
		if f.refuse != "" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": f.refuse})
			return
		}
		json.NewEncoder(w).Encode(api.ProgressResponse{Status: "success"})
	default:
		http.NotFound(w, r)
	}
}

// TestCreateRequest checks the request the create flow sends (the shape `ollama create` sends for
// FROM model / FROM mmproj / ADAPTER), that uploaded blobs carry the files' bytes under their
// digests, that a blob the server has is not uploaded again, and how a refusal reads.
func TestCreateRequest(t *testing.T) {
	fake := &fakeOllama{blobs: map[string][]byte{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	paths := map[string]string{}
	for _, n := range []string{"text.gguf", "proj.gguf", "lora.gguf"} {
		paths[n] = filepath.Join(dir, n)
		require.NoError(t, os.WriteFile(paths[n], []byte("contents of "+n), 0o644))
	}
	ct, _ := ConvertChatTemplate("<|im_start|>")
	m := OllamaModel{Name: "me/vz-test:v1", Model: paths["text.gguf"], MMProj: paths["proj.gguf"], Adapter: paths["lora.gguf"], Template: &ct}
	client, base, err := OllamaClient(srv.URL)
	require.NoError(t, err)
	var progress strings.Builder
	require.NoError(t, CreateInOllama(context.Background(), client, base, m, &progress))

	require.Len(t, fake.creates, 1)
	req := fake.creates[0]
	require.Equal(t, "me/vz-test:v1", req.Model)
	digest := func(n string) string { d, err := fileDigest(paths[n]); require.NoError(t, err); return d }
	require.Equal(t, map[string]string{blobModel: digest("text.gguf"), blobMMProj: digest("proj.gguf")}, req.Files)
	require.Equal(t, map[string]string{blobAdapter: digest("lora.gguf")}, req.Adapters)
	require.Equal(t, ct.Template, req.Template)
	require.Equal(t, []any{"<|im_start|>", "<|im_end|>"}, req.Parameters["stop"])
	for n := range paths {
		require.Equal(t, "contents of "+n, string(fake.blobs[digest(n)]))
	}
	require.Contains(t, progress.String(), "uploading")

	// Second create: the blobs are on the server already and are not sent again.
	fake.uploaded = nil
	require.NoError(t, CreateInOllama(context.Background(), client, base, m, nil))
	require.Empty(t, fake.uploaded)

	fake.refuse = "invalid model name"
	err = CreateInOllama(context.Background(), client, base, m, nil)
	require.ErrorContains(t, err, `Ollama refused to create "me/vz-test:v1": invalid model name`)
}

func TestOllamaClientHost(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:11500":      "http://127.0.0.1:11500",
		"http://example:1234":  "http://example:1234",
		"https://example/path": "https://example/path",
		// a bare name gets Ollama's port, as OLLAMA_HOST does; a URL keeps its scheme's
		"gpu-box":        "http://gpu-box:11434",
		"localhost":      "http://localhost:11434",
		"[::1]":          "http://[::1]:11434",
		"http://gpu-box": "http://gpu-box",
	} {
		_, u, err := OllamaClient(in)
		require.NoError(t, err)
		require.Equal(t, want, u.String())
	}
	_, _, err := OllamaClient("http://")
	require.ErrorContains(t, err, "not a host:port or URL")
}

package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog/log"
)

// maxLine bounds one JSONL line (a game transcript with long reasoning can be large, but a line of
// more than 64 MiB is a broken file, not data).
const maxLine = 64 << 20

// forEachLine calls fn with the 1-based line number and content of every non-blank line of path.
// Errors name the file and line. A last line that is not valid JSON and has no trailing newline
// is what a run still being written (or killed mid-write) leaves behind: it is skipped with a
// warning instead of failing the whole report.
func forEachLine(path string, fn func(line int, raw []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	for lineNo := 1; ; lineNo++ {
		raw, readErr := r.ReadSlice('\n')
		if errors.Is(readErr, bufio.ErrBufferFull) {
			// Long line: gather it in pieces.
			buf := append([]byte(nil), raw...)
			for errors.Is(readErr, bufio.ErrBufferFull) {
				if len(buf) > maxLine {
					return fmt.Errorf("%s:%d: line longer than %d MiB", path, lineNo, maxLine>>20)
				}
				raw, readErr = r.ReadSlice('\n')
				buf = append(buf, raw...)
			}
			raw = buf
		}
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return fmt.Errorf("%s:%d: %w", path, lineNo, readErr)
		}
		complete := len(raw) > 0 && raw[len(raw)-1] == '\n'
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) > 0 {
			if !complete && !json.Valid(trimmed) {
				log.Warn().Str("file", path).Int("line", lineNo).
					Msg("skipping a truncated last line (run still being written?)")
				return nil
			}
			if err := fn(lineNo, trimmed); err != nil {
				return fmt.Errorf("%s:%d: %w", path, lineNo, err)
			}
		}
		if errors.Is(readErr, io.EOF) {
			return nil
		}
	}
}

// decodeStrict decodes one JSON object, with a message that says what is wrong in words.
func decodeStrict(raw []byte, v any) error {
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("not a JSON object: %s", snippet(raw))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("field %q: got a JSON %s, want %s", typeErr.Field, typeErr.Value, typeErr.Type)
		}
		return fmt.Errorf("invalid JSON: %v: %s", err, snippet(raw))
	}
	return nil
}

// snippet shortens raw input for an error message.
func snippet(raw []byte) string {
	const n = 60
	if len(raw) > n {
		return fmt.Sprintf("%q...", raw[:n])
	}
	return fmt.Sprintf("%q", raw)
}

package llm

/*
#include <stdlib.h>
#include "llama.h"
#include "mtmd.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// Message is one chat turn. Put MediaMarker() in Content where an image goes.
type Message struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// MediaMarker is the text that marks where an image goes in a prompt ("<__media__>").
func MediaMarker() string { return C.GoString(C.mtmd_default_marker()) }

// FormatChat renders messages with the model's own chat template (tokenizer.chat_template, matched
// by llama.cpp against its built-in templates), ending with the assistant's turn opened.
func (m *Model) FormatChat(msgs []Message) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return "", errClosed
	}
	if len(msgs) == 0 {
		return "", errors.New("llm: FormatChat: no messages")
	}
	for i, msg := range msgs {
		// the messages go to llama.cpp as C strings: anything after a NUL would be dropped silently
		if strings.IndexByte(msg.Role, 0) >= 0 || strings.IndexByte(msg.Content, 0) >= 0 {
			return "", fmt.Errorf("llm: FormatChat: message %d has a NUL byte", i)
		}
	}
	// NULL would mean chatml, not the model's template (cgo-notes §5).
	tmpl := C.llama_model_chat_template(m.model, nil)
	if tmpl == nil {
		return "", fileErr("model", m.path, "has no chat template (tokenizer.chat_template)")
	}
	cmsgs := (*[1 << 20]C.struct_llama_chat_message)(C.malloc(C.size_t(len(msgs)) * C.size_t(unsafe.Sizeof(C.struct_llama_chat_message{}))))[:len(msgs):len(msgs)]
	defer C.free(unsafe.Pointer(&cmsgs[0]))
	size := 0
	for i, msg := range msgs {
		cmsgs[i].role = C.CString(msg.Role)
		cmsgs[i].content = C.CString(msg.Content)
		defer C.free(unsafe.Pointer(cmsgs[i].role))
		defer C.free(unsafe.Pointer(cmsgs[i].content))
		size += len(msg.Role) + len(msg.Content)
	}
	size = 2*size + 256
	for range 2 {
		buf := make([]byte, size)
		n := int(C.llama_chat_apply_template(tmpl, &cmsgs[0], C.size_t(len(msgs)), true,
			(*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf))))
		if n < 0 {
			return "", fileErr("model", m.path, "llama.cpp does not recognise its chat template %q", truncate(C.GoString(tmpl), 80))
		}
		if n <= len(buf) {
			return string(buf[:n]), nil
		}
		size = n // the output was truncated: llama.cpp returned the full length
	}
	return "", fmt.Errorf("llm: FormatChat: template output kept growing")
}

// ChatPrompt formats a system turn and a user turn with the images first (one MediaMarker each,
// the layout LLaVA- and Qwen-style models are trained on, unless user already places the markers)
// and tokenizes it: the usual way to build a game prompt.
func (m *Model) ChatPrompt(system, user string, images ...[]byte) (*Prompt, error) {
	if marker := MediaMarker(); len(images) > 0 && !strings.Contains(user, marker) {
		user = strings.Repeat(marker+"\n", len(images)) + user
	}
	var msgs []Message
	if system != "" {
		msgs = append(msgs, Message{Role: "system", Content: system})
	}
	text, err := m.FormatChat(append(msgs, Message{Role: "user", Content: user}))
	if err != nil {
		return nil, err
	}
	return m.Tokenize(text, images...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

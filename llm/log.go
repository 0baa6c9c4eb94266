package llm

/*
#include "ggml.h"
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"

extern void vzlocalLlamaLog(int level, char * text, void * user_data);
*/
import "C"

import (
	"strings"
	"sync"
	"unsafe"

	"github.com/rs/zerolog/log"
)

// llama.cpp, ggml, clip and the mtmd helper each print through their own callback. All of them
// are routed here: every complete line goes to zerolog at debug level (quiet by default), and the
// last error/warning lines are kept so that a failed load can say why in its Go error.
// The llama package installs its own callback in its init; installLog runs after it (from
// Load), so ours wins.

var (
	logOnce sync.Once
	logMu   sync.Mutex
	logLine strings.Builder
	logLvl  C.int
	logLast []string // recent error and warning lines, newest last
)

const keepLogLines = 8

func installLog() {
	logOnce.Do(func() {
		cb := C.ggml_log_callback(C.vzlocalLlamaLog)
		C.llama_log_set(cb, nil) // also sets ggml's
		C.mtmd_log_set(cb, nil)  // clip and mtmd
		C.mtmd_helper_log_set(cb, nil)
	})
}

//export vzlocalLlamaLog
func vzlocalLlamaLog(level C.int, text *C.char, _ unsafe.Pointer) {
	s := C.GoString(text)
	logMu.Lock()
	defer logMu.Unlock()
	if level != C.GGML_LOG_LEVEL_CONT {
		logLvl = level
	}
	logLine.WriteString(s)
	if !strings.HasSuffix(s, "\n") {
		return
	}
	line := strings.TrimRight(logLine.String(), "\n")
	logLine.Reset()
	if logLvl == C.GGML_LOG_LEVEL_ERROR || logLvl == C.GGML_LOG_LEVEL_WARN {
		logLast = append(logLast, line)
		if len(logLast) > keepLogLines {
			logLast = logLast[len(logLast)-keepLogLines:]
		}
	}
	log.Debug().Str("from", "llama.cpp").Msg(line)
}

// takeLogErrors returns and forgets the error/warning lines logged since the last call.
func takeLogErrors() string {
	logMu.Lock()
	defer logMu.Unlock()
	s := strings.Join(logLast, "; ")
	logLast = nil
	return s
}

package testmodel

// Everything that uses the tiny models links llama.cpp; importing amxlink here lets those test
// binaries link on AMX CPUs with -march=native (see the amxlink package).
import _ "github.com/vzlocal/vzlocal/internal/amxlink"

package main

import (
	"os"
	"testing"
)

// TestMain lets tests run the real command line in a child process: the test binary re-executes
// itself with VZLOCAL_RUN_MAIN=1 and the vzlocal arguments (see runVzlocal).
func TestMain(m *testing.M) {
	if os.Getenv("VZLOCAL_RUN_MAIN") == "1" {
		os.Args = append([]string{"vzlocal"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

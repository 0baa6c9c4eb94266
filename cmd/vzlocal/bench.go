package main

import "errors"

// benchCmd is not written yet.
type benchCmd struct{}

func (c *benchCmd) Run() error { return errors.New("vzlocal bench: not implemented yet") }

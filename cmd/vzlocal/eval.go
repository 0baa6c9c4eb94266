package main

import "errors"

// evalCmd is not written yet.
type evalCmd struct{}

func (c *evalCmd) Run() error { return errors.New("vzlocal eval: not implemented yet") }

package main

import "errors"

// trainCmd is not written yet.
type trainCmd struct{}

func (c *trainCmd) Run() error { return errors.New("vzlocal train: not implemented yet") }

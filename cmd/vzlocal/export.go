package main

import "errors"

// exportCmd is not written yet.
type exportCmd struct{}

func (c *exportCmd) Run() error { return errors.New("vzlocal export: not implemented yet") }

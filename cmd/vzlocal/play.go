package main

import "errors"

// playCmd is not written yet.
type playCmd struct{}

func (c *playCmd) Run() error { return errors.New("vzlocal play: not implemented yet") }

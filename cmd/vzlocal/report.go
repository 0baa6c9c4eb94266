package main

import "errors"

// reportCmd is not written yet.
type reportCmd struct{}

func (c *reportCmd) Run() error { return errors.New("vzlocal report: not implemented yet") }

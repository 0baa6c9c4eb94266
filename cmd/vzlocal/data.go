package main

import "errors"

// dataCmd is not written yet.
type dataCmd struct{}

func (c *dataCmd) Run() error { return errors.New("vzlocal data: not implemented yet") }

package main

import "errors"

// testmodelCmd is not written yet.
type testmodelCmd struct{}

func (c *testmodelCmd) Run() error { return errors.New("vzlocal testmodel: not implemented yet") }

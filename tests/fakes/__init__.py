"""In-process fakes of the servers edgecascade talks to, for tests that must not need the real ones."""

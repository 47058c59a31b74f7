package main

import "sync"

// startUDP starts the BEP 15 frontend (wired once tracker/udpapi lands).
func (s *server) startUDP(wg *sync.WaitGroup, errc chan<- error) error { return nil }

func (s *server) stopUDP() {}

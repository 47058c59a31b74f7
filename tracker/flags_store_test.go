package main

import (
	"io"
	"strings"
	"testing"
)

func TestStoreFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.store != "memory" || o.storePrefix != "webswarm:" || o.storeTimeoutMS != 250 {
		t.Errorf("store defaults: %q %q %d", o.store, o.storePrefix, o.storeTimeoutMS)
	}
	for _, ok := range []string{"redis://127.0.0.1:6379", "redis://u:p@127.0.0.1:6379/3", "rediss://127.0.0.1:6380",
		"unix:///run/redis/redis.sock", "redis-cluster://127.0.0.1:7000,127.0.0.1:7001"} {
		if _, err := parseFlags([]string{"--store", ok}, io.Discard); err != nil {
			t.Errorf("--store %s: %v", ok, err)
		}
	}
	for _, args := range [][]string{
		{"--store", "redis://127.0.0.1:6379/x"}, {"--store", "mysql://h"}, {"--store", "redis-cluster://h1"},
		{"--store", "redis://h:1", "--store_prefix", ""}, {"--store_timeout_ms", "0"},
		// The state file is the memory store's: a shared store is persisted by Redis, and an
		// old file is loaded into it with --import_dfile.
		{"--store", "redis://h:1", "--dfile", "state"}, {"--import_dfile", "state"},
	} {
		_, err := parseFlags(args, io.Discard)
		want := args[len(args)-2]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err %v, want one naming %s", args, err, want)
		}
	}
	// --dfile's default is no reason to refuse a shared store.
	if o, err := parseFlags([]string{"--store", "redis://h:1", "--import_dfile", "state"}, io.Discard); err != nil || o.importDfile != "state" {
		t.Errorf("--store with --import_dfile: %v", err)
	}
	// A password never appears in the message.
	_, err = parseFlags([]string{"--store", "redis://u:hunter2@127.0.0.1:6379/x"}, io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad URL with a password: %v", err)
	}
}

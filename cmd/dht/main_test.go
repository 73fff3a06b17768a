package main

import (
	"os"
	"testing"
)

// asDHT, set in the environment, makes this test binary run as dht: the local
// clusters the tests start run it as their node processes (it is os.Executable).
const asDHT = "DHT_TEST_BINARY_AS_DHT"

func TestMain(m *testing.M) {
	if os.Getenv(asDHT) == "1" {
		os.Exit(run())
	}
	if err := os.Setenv(asDHT, "1"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

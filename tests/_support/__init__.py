"""Helpers shared by test modules (servers on loopback, sample layers, write-test settings); no tests here."""

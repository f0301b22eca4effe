package main

func dummy() {}

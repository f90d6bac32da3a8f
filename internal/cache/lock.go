package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Sandbox operations take turns. Lock serialises every command on one
// container ID across processes (the runtime's plexus binaries, plexusd
// and its hot-plug), through an advisory flock(2) on <id>.lock next to the
// record: the kernel drops it when its holder dies, so a SIGKILLed ADD
// never leaves it taken.
//
// An ADD also leaves an <id>.adding mark while its delegates run and
// removes it when it has returned (with its rollback done). A mark found
// by the next holder of the lock says the ADD's runner died mid-way: a
// delegate's IPAM plugin may still run, and DEL must stop it first
// (delegexec.Reap) or it takes an address after DEL freed everything.

// Lock takes containerID's lock, waiting while ctx lasts, and returns the
// function that drops it.
func (s *Store) Lock(ctx context.Context, containerID string) (unlock func(), err error) {
	if err := s.checkID(containerID); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create attachment cache dir %s: %w", s.dir, err)
	}
	path := filepath.Join(s.dir, containerID+".lock")
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sandbox lock: %w", err)
		}
		if err := flock(ctx, f); err != nil {
			f.Close()
			return nil, fmt.Errorf("waiting for the sandbox lock of %s: %w", containerID, err)
		}
		// A DEL removes the file while holding it; a waiter that then got
		// the old file's lock takes the new one instead.
		if sameFile(f, path) {
			return func() { f.Close() }, nil
		}
		f.Close()
	}
}

// Unlink removes containerID's lock and adding mark; its caller holds the
// lock (a DEL that removed the record).
func (s *Store) Unlink(containerID string) error {
	return errors.Join(rmMissingOK(filepath.Join(s.dir, containerID+".adding")),
		rmMissingOK(filepath.Join(s.dir, containerID+".lock")))
}

// MarkAdding records that an ADD runs delegates for containerID.
func (s *Store) MarkAdding(containerID string) error {
	f, err := os.OpenFile(filepath.Join(s.dir, containerID+".adding"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("mark ADD in progress: %w", err)
	}
	return f.Close()
}

// Added removes the mark MarkAdding left.
func (s *Store) Added(containerID string) error {
	return rmMissingOK(filepath.Join(s.dir, containerID+".adding"))
}

// Adding reports whether an ADD of containerID left its mark: it is
// running (the caller does not hold the lock) or its runner died.
func (s *Store) Adding(containerID string) bool {
	_, err := os.Stat(filepath.Join(s.dir, containerID+".adding"))
	return err == nil
}

func rmMissingOK(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// flock takes f's exclusive lock, waiting in the kernel (no polling) while
// ctx lasts. The blocking call cannot be interrupted, so it runs aside; a
// lock that comes after ctx ended is dropped at once.
func flock(ctx context.Context, f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return nil
	}
	dup, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return err
	}
	got := make(chan error, 1)
	go func() {
		for {
			err := syscall.Flock(dup, syscall.LOCK_EX)
			if !errors.Is(err, syscall.EINTR) {
				got <- err
				return
			}
		}
	}()
	select {
	case err := <-got:
		syscall.Close(dup)
		return err
	case <-ctx.Done():
		go func() {
			if <-got == nil {
				syscall.Flock(dup, syscall.LOCK_UN)
			}
			syscall.Close(dup)
		}()
		return context.Cause(ctx)
	}
}

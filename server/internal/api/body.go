package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
	"unicode/utf8"
)

// Request bodies: JSON bodies are read whole (they are small: maxBody),
// checked for UTF-8 and for trailing data, then decoded strictly. Uploads
// (CSV imports) are spooled to a temporary file so that memory stays flat in
// their size and a body over the limit is refused before anything of it is
// applied.

// decodeSeen, when set (openapi_test.go), is told of every value a
// route's JSON body is decoded into, so that the test can check each of
// its fields against the OpenAPI document.
var decodeSeen func(r *http.Request, v any)

// maxBody bounds a JSON request body.
const maxBody = 1 << 20

// ErrBodyTooLarge reports a request body over its route's limit (413).
var ErrBodyTooLarge = errors.New("request body too large")

// errBadBody reports a body that is not one valid JSON value of the
// expected shape (400).
var errBadBody = errors.New("invalid JSON body")

// readJSON decodes the request body into v: at most maxBody bytes (else
// ErrBodyTooLarge), valid UTF-8 (encoding/json would silently turn invalid
// bytes into U+FFFD), no unknown fields and nothing after the value.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if decodeSeen != nil {
		decodeSeen(r, v)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: at most %d bytes", ErrBodyTooLarge, mbe.Limit)
		}
		return fmt.Errorf("%w: %v", errBadBody, err)
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: not valid UTF-8", errBadBody)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadBody, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the JSON value (send one value per request)", errBadBody)
	}
	return nil
}

// bodyStatus is the HTTP status of a readJSON or spool error.
func bodyStatus(err error) int {
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errSpool):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// decodeBody is readJSON answering the error itself; it reports whether v
// was decoded.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := readJSON(w, r, v); err != nil {
		writeError(w, bodyStatus(err), err.Error())
		return false
	}
	return true
}

// spool copies the request body into a temporary file in dir (the system's
// when empty), at most limit bytes: a longer body is ErrBodyTooLarge and
// leaves no file. The caller closes and removes the returned file (see
// closeSpool). A declared Content-Length over the limit is refused before
// anything is read.
func (h *Handler) spool(w http.ResponseWriter, r *http.Request) (*os.File, error) {
	dir, limit := h.d.UploadDir, h.maxImport()
	if h.d.UploadTimeout > 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.d.UploadTimeout))
	}
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes declared, at most %d (split the file)", ErrBodyTooLarge, r.ContentLength, limit)
	}
	f, err := os.CreateTemp(dir, "shelfsync-upload-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSpool, err)
	}
	fw := &fileWriter{f: f}
	_, err = io.Copy(fw, http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		closeSpool(f)
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, fmt.Errorf("%w: at most %d bytes (split the file)", ErrBodyTooLarge, limit)
		case fw.err != nil:
			return nil, fmt.Errorf("%w: %v", errSpool, fw.err)
		}
		return nil, fmt.Errorf("%w: read the upload: %v", errBadBody, err)
	}
	return f, nil
}

// errSpool reports an upload that could not be written to the server's
// disk (503: try again when there is space).
var errSpool = errors.New("the server could not store the upload")

// fileWriter remembers the error of the file side of a copy.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// closeSpool closes and removes a spooled upload.
func closeSpool(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}

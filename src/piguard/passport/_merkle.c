/* Record splitting and Merkle hashing for dataset passports, in C so a 1 GB file hashes at disk speed.
 *
 * Why C: a leaf is SHA-256(0x00 || record) and a node SHA-256(0x01 || left || right) (RFC 9162 section
 * 2.1.1); a 10-million-record file needs 10 million leaf and 10 million node hashes. From Python each costs
 * a hashlib object and a call (~0.5 us), several times the hashing itself. Here each is three calls into
 * OpenSSL's SHA-256 (its assembly, with the SHA extensions where the CPU has them): no hash is written here.
 * Every function releases the GIL, so the caller runs the whole-file digest, leaf hashing and the two halves
 * of a tree level on separate threads. ``records.py`` holds the same definitions in plain Python (used when
 * this extension is not built, and tested to give identical leaves).
 */
#define PY_SSIZE_T_CLEAN
/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 but are the cheapest per small message: measured here,
 * EVP_Digest and the one-shot SHA256() (which fetches through EVP) cost three times as much per leaf. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

typedef Py_ssize_t ssz;

enum { MODE_LINES = 0, MODE_CSV = 1 };

static const unsigned char LEAF_PREFIX = 0x00;
static const unsigned char NODE_PREFIX = 0x01;

/* Find the end of the record starting at p: the position of its terminating LF (or end). In CSV mode an LF
 * inside a double-quoted field does not end the record (RFC 4180; "" inside quotes toggles twice). */
static inline const unsigned char *record_end(const unsigned char *p, const unsigned char *end, int mode) {
    if (mode == MODE_LINES) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        return nl ? nl : end;
    }
    int quoted = 0;
    while (p < end) {
        if (!quoted) {
            /* fast path: jump to the next quote or newline */
            const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
            const unsigned char *stop = nl ? nl : end;
            const unsigned char *q = memchr(p, '"', (size_t)(stop - p));
            if (!q) return stop;
            quoted = 1;
            p = q + 1;
        } else {
            const unsigned char *q = memchr(p, '"', (size_t)(end - p));
            if (!q) return end; /* unterminated quote: the rest of the file is one record */
            quoted = 0;
            p = q + 1;
        }
    }
    return end;
}

/* The record's content: [start, e) without a trailing CR. */
static inline ssz content_len(const unsigned char *start, const unsigned char *e) {
    ssz n = e - start;
    if (n > 0 && start[n - 1] == '\r') n--;
    return n;
}

static int parse_mode(int mode) {
    if (mode != MODE_LINES && mode != MODE_CSV) {
        PyErr_SetString(PyExc_ValueError, "mode must be 0 (lines) or 1 (csv)");
        return -1;
    }
    return 0;
}

/* leaves(buffer, mode, skip_header) -> (bytes of 32-byte leaf hashes, record count, header end offset).
 * The result is grown in place (its GIL is taken back only to resize it), so 10 million leaves are never
 * copied from a scratch buffer. */
static PyObject *py_leaves(PyObject *self, PyObject *args) {
    Py_buffer buf;
    int mode, skip_header;
    if (!PyArg_ParseTuple(args, "y*ip", &buf, &mode, &skip_header)) return NULL;
    if (parse_mode(mode) < 0) { PyBuffer_Release(&buf); return NULL; }
    /* First guess: a record every 64 bytes (grown by half when short). */
    ssz cap = buf.len / 64 + 1024, n = 0;
    PyObject *leaves = PyBytes_FromStringAndSize(NULL, cap * SHA256_DIGEST_LENGTH);
    if (!leaves) { PyBuffer_Release(&buf); return NULL; }
    ssz header_end = 0;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *p = buf.buf, *end = p + buf.len, *q = p;
    int need_header = skip_header;
    while (q < end) {
        const unsigned char *e = record_end(q, end, mode);
        ssz len = content_len(q, e);
        const unsigned char *next = e < end ? e + 1 : end;
        if (len > 0) {
            if (need_header) {
                need_header = 0;
                header_end = next - p;
            } else {
                if (n == cap) {
                    Py_BLOCK_THREADS
                    cap += cap / 2;
                    failed = _PyBytes_Resize(&leaves, cap * SHA256_DIGEST_LENGTH) < 0;
                    Py_UNBLOCK_THREADS
                    if (failed) break;
                }
                SHA256_CTX ctx;
                SHA256_Init(&ctx);
                SHA256_Update(&ctx, &LEAF_PREFIX, 1);
                SHA256_Update(&ctx, q, (size_t)len);
                SHA256_Final((unsigned char *)PyBytes_AS_STRING(leaves) + n * SHA256_DIGEST_LENGTH, &ctx);
                n++;
            }
        }
        q = next;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (failed) return NULL; /* _PyBytes_Resize freed it and set MemoryError */
    if (_PyBytes_Resize(&leaves, n * SHA256_DIGEST_LENGTH) < 0) return NULL;
    return Py_BuildValue("(Nnn)", leaves, n, header_end);
}

/* spans(buffer, mode, skip_header, first, step, limit) -> bytes of int64 (start, end) pairs for records
 * first, first+step, ... (at most limit), end excluding the terminator and a trailing CR. */
static PyObject *py_spans(PyObject *self, PyObject *args) {
    Py_buffer buf;
    int mode, skip_header;
    ssz first, step, limit;
    if (!PyArg_ParseTuple(args, "y*ipnnn", &buf, &mode, &skip_header, &first, &step, &limit)) return NULL;
    if (parse_mode(mode) < 0) { PyBuffer_Release(&buf); return NULL; }
    if (first < 0 || step < 1 || limit < 0) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "first >= 0, step >= 1, limit >= 0");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, limit * 2 * (ssz)sizeof(int64_t));
    if (!out) { PyBuffer_Release(&buf); return NULL; }
    int64_t *spans = (int64_t *)PyBytes_AS_STRING(out);
    ssz got = 0;
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *p = buf.buf, *end = p + buf.len, *q = p;
    int need_header = skip_header;
    ssz index = 0;
    while (q < end && got < limit) {
        const unsigned char *e = record_end(q, end, mode);
        ssz len = content_len(q, e);
        if (len > 0) {
            if (need_header) {
                need_header = 0;
            } else {
                if (index >= first && (index - first) % step == 0) {
                    spans[2 * got] = q - p;
                    spans[2 * got + 1] = (q - p) + len;
                    got++;
                }
                index++;
            }
        }
        q = e < end ? e + 1 : end;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (got < limit && _PyBytes_Resize(&out, got * 2 * (ssz)sizeof(int64_t)) < 0) return NULL;
    return out;
}

/* node_level(src, dst, start, stop): dst[i] = SHA-256(0x01 || src[2i] || src[2i+1]) for pairs i in
 * [start, stop). The caller carries an unpaired last node up a level unchanged, which gives the RFC 9162
 * tree hash for any number of leaves. */
static PyObject *py_node_level(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    ssz start, stop;
    if (!PyArg_ParseTuple(args, "y*w*nn", &src, &dst, &start, &stop)) return NULL;
    ssz pairs = src.len / (2 * SHA256_DIGEST_LENGTH);
    if (src.len % SHA256_DIGEST_LENGTH || start < 0 || stop > pairs || start > stop ||
        dst.len < stop * SHA256_DIGEST_LENGTH) {
        PyBuffer_Release(&src);
        PyBuffer_Release(&dst);
        PyErr_SetString(PyExc_ValueError, "node_level: bad buffer sizes or range");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *s = src.buf;
    unsigned char *d = dst.buf;
    for (ssz i = start; i < stop; i++) {
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, &NODE_PREFIX, 1);
        SHA256_Update(&ctx, s + 2 * i * SHA256_DIGEST_LENGTH, 2 * SHA256_DIGEST_LENGTH);
        SHA256_Final(d + i * SHA256_DIGEST_LENGTH, &ctx);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    Py_RETURN_NONE;
}

/* column_leaves(columns, nrows) -> leaf hashes of table rows. Each column is a tuple (validity or None,
 * int64 offsets, data, array offset) of an Arrow large_string array; a row's canonical record is, column by
 * column, a 4-byte big-endian length and the UTF-8 bytes, or FF FF FF FF for null. */
typedef struct {
    Py_buffer validity, offsets, data;
    int has_validity;
    ssz offset;
} Col;

static PyObject *py_column_leaves(PyObject *self, PyObject *args) {
    PyObject *cols_obj;
    ssz nrows;
    if (!PyArg_ParseTuple(args, "On", &cols_obj, &nrows)) return NULL;
    PyObject *seq = PySequence_Fast(cols_obj, "columns must be a sequence");
    if (!seq) return NULL;
    ssz ncols = PySequence_Fast_GET_SIZE(seq);
    Col *cols = PyMem_Calloc((size_t)(ncols ? ncols : 1), sizeof(Col));
    if (!cols) { Py_DECREF(seq); return PyErr_NoMemory(); }
    ssz opened = 0;
    PyObject *result = NULL;
    for (ssz c = 0; c < ncols; c++) {
        PyObject *validity, *offsets, *data;
        Col *col = &cols[c];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, c), "OOOn", &validity, &offsets, &data,
                              &col->offset))
            goto done;
        col->has_validity = validity != Py_None;
        if (col->has_validity && PyObject_GetBuffer(validity, &col->validity, PyBUF_SIMPLE) < 0) goto done;
        if (PyObject_GetBuffer(offsets, &col->offsets, PyBUF_SIMPLE) < 0) {
            if (col->has_validity) PyBuffer_Release(&col->validity);
            goto done;
        }
        if (PyObject_GetBuffer(data, &col->data, PyBUF_SIMPLE) < 0) {
            if (col->has_validity) PyBuffer_Release(&col->validity);
            PyBuffer_Release(&col->offsets);
            goto done;
        }
        opened++;
        ssz last = col->offset + nrows;
        if (col->offsets.len < (last + 1) * (ssz)sizeof(int64_t) ||
            (col->has_validity && col->validity.len * 8 < last)) {
            PyErr_SetString(PyExc_ValueError, "column_leaves: a column is shorter than nrows");
            goto done;
        }
        const int64_t *off = col->offsets.buf;
        if (off[col->offset] < 0 || off[last] > col->data.len || off[col->offset] > off[last]) {
            PyErr_SetString(PyExc_ValueError, "column_leaves: offsets outside the data buffer");
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, nrows * SHA256_DIGEST_LENGTH);
    if (!result) goto done;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    static const unsigned char null_len[4] = {0xff, 0xff, 0xff, 0xff};
    for (ssz r = 0; r < nrows && !bad; r++) {
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, &LEAF_PREFIX, 1);
        for (ssz c = 0; c < ncols; c++) {
            Col *col = &cols[c];
            ssz i = col->offset + r;
            const unsigned char *vb = col->validity.buf;
            if (col->has_validity && !(vb[i >> 3] & (1 << (i & 7)))) {
                SHA256_Update(&ctx, null_len, 4);
                continue;
            }
            const int64_t *off = col->offsets.buf;
            int64_t a = off[i], b = off[i + 1];
            if (b < a || b - a > 0xfffffffeLL) { bad = 1; break; }
            uint32_t n = (uint32_t)(b - a);
            unsigned char be[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                                   (unsigned char)n};
            SHA256_Update(&ctx, be, 4);
            SHA256_Update(&ctx, (const unsigned char *)col->data.buf + a, n);
        }
        SHA256_Final(out + r * SHA256_DIGEST_LENGTH, &ctx);
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        Py_CLEAR(result);
        PyErr_SetString(PyExc_ValueError, "column_leaves: a cell is too large or its offsets decrease");
    }
done:
    for (ssz c = 0; c < opened; c++) {
        if (cols[c].has_validity) PyBuffer_Release(&cols[c].validity);
        PyBuffer_Release(&cols[c].offsets);
        PyBuffer_Release(&cols[c].data);
    }
    PyMem_Free(cols);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"leaves", py_leaves, METH_VARARGS, "Leaf hashes of the records of a text buffer."},
    {"spans", py_spans, METH_VARARGS, "Byte spans of selected records of a text buffer."},
    {"node_level", py_node_level, METH_VARARGS, "Hash pairs of nodes into the next tree level."},
    {"column_leaves", py_column_leaves, METH_VARARGS, "Leaf hashes of table rows from Arrow string columns."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_merkle", "Compiled record hashing for passports.",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__merkle(void) { return PyModule_Create(&module); }

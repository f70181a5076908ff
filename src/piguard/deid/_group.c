/*
 * Hash factorization of int64 keys for the lattice search (piguard.deid.lattice).
 *
 * Checking a lattice node groups the distinct quasi-identifier tuples by a combined integer key. numpy
 * only groups by sorting (np.unique), which costs O(n log n) per node and dominated the search on large
 * tables; pandas' hash factorize would mean a heavy dependency for one function. This is that one
 * function: open addressing with Fibonacci hashing, group ids in order of first appearance, O(n).
 *
 * factorize(keys, codes_out, uniques_out) -> number of groups
 *   keys:        buffer of n int64 keys (read-only)
 *   codes_out:   writable buffer of n int64, receives the group id of each key
 *   uniques_out: writable buffer of n int64, receives each group's key (first n_groups entries)
 *
 * Plain C against the CPython buffer API; no numpy headers needed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static PyObject *factorize(PyObject *self, PyObject *args) {
    Py_buffer keys, codes, uniques;
    if (!PyArg_ParseTuple(args, "y*w*w*", &keys, &codes, &uniques)) {
        return NULL;
    }
    Py_ssize_t n = keys.len / (Py_ssize_t)sizeof(int64_t);
    if (codes.len < keys.len || uniques.len < keys.len || keys.len % (Py_ssize_t)sizeof(int64_t)) {
        PyBuffer_Release(&keys);
        PyBuffer_Release(&codes);
        PyBuffer_Release(&uniques);
        PyErr_SetString(PyExc_ValueError, "factorize: buffers must hold n int64 values each");
        return NULL;
    }
    const int64_t *k = (const int64_t *)keys.buf;
    int64_t *out = (int64_t *)codes.buf;
    int64_t *uniq = (int64_t *)uniques.buf;
    /* Table of group ids (+1; 0 = empty), at least twice the number of keys, a power of two. */
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * n) {
        bits++;
    }
    size_t size = (size_t)1 << bits, mask = size - 1;
    int64_t *slot = NULL;
    Py_ssize_t groups = 0;
    Py_BEGIN_ALLOW_THREADS
    slot = (int64_t *)calloc(size, sizeof(int64_t));
    if (slot != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t h = ((uint64_t)k[i] * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
            for (;;) {
                int64_t g = slot[h];
                if (g == 0) {
                    slot[h] = groups + 1;
                    uniq[groups] = k[i];
                    out[i] = groups++;
                    break;
                }
                if (uniq[g - 1] == k[i]) {
                    out[i] = g - 1;
                    break;
                }
                h = (h + 1) & mask;
            }
        }
        free(slot);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&keys);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&uniques);
    if (slot == NULL) {
        return PyErr_NoMemory();
    }
    return PyLong_FromSsize_t(groups);
}

static PyMethodDef methods[] = {
    {"factorize", factorize, METH_VARARGS, "factorize(keys, codes_out, uniques_out) -> n_groups"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_group", NULL, -1, methods};

PyMODINIT_FUNC PyInit__group(void) { return PyModule_Create(&module); }

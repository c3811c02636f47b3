/* Kafka records written straight into a record batch's body, their headers from a tuple of values.
 *
 * aiokafka's batch builder takes each record's headers as a list of (str, bytes) tuples and
 * encodes every header name again for every record. An agentflux event carries eleven headers
 * whose names never change, so the publisher built a list and eleven tuples per event (and the
 * garbage collector counted them) only for the builder to take them apart again. A RecordWriter
 * knows its header names from the start, takes each record's header values as one tuple (bytes,
 * str written as UTF-8, or None) and writes the record in one pass.
 *
 * The format is Kafka's message format v2 (KIP-98); each record is
 *   length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
 *   keyLength varint, key, valueLength varint, value, headerCount varint,
 *   headers: (keyLength varint, key utf-8, valueLength varint, value)*
 * with zigzag varints, null as length -1. Only the records are written here: the batch header,
 * compression and CRC are the Python side's (once per batch, see _event_batch.py). As in
 * aiokafka's builder, a record that would take the records past the limit is refused, except the
 * first one, and a record's timestamp is the wall clock in milliseconds unless given. A closed
 * writer refuses every record (the batch is on its way), so the batch's own append is this one.
 *
 * A writer holds only a tuple of bytes: it cannot be part of a reference cycle, so it is not
 * tracked by the garbage collector. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

enum { FIRST_CAPACITY_MAX = 1 << 20 };

typedef struct {
    PyObject_HEAD
    PyObject *names;            /* tuple of bytes: the header names, UTF-8 */
    char *data;                 /* the records written so far */
    Py_ssize_t size;
    Py_ssize_t capacity;
    Py_ssize_t limit;           /* most bytes of records (the first record is always taken) */
    long long first_timestamp;
    long long max_timestamp;
    int count;
    char closed;                /* no more records: append returns None (T_BOOL: a char) */
} RecordWriter;

static inline uint64_t
zigzag(int64_t value)
{
    return ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
}

static inline Py_ssize_t
varint_size(int64_t value)
{
    uint64_t bits = zigzag(value);
    Py_ssize_t size = 1;
    while (bits >= 0x80) {
        bits >>= 7;
        size++;
    }
    return size;
}

static inline char *
write_varint(char *out, int64_t value)
{
    uint64_t bits = zigzag(value);
    while (bits >= 0x80) {
        *out++ = (char)((bits & 0x7f) | 0x80);
        bits >>= 7;
    }
    *out++ = (char)bits;
    return out;
}

/* A field's bytes: bytes as they are, str as UTF-8, None as null (length -1). */
typedef struct {
    const char *data;
    Py_ssize_t length;          /* -1 for null */
} Field;

static int
field_of(PyObject *value, Field *field, int allow_str, const char *what)
{
    if (value == Py_None) {
        field->data = NULL;
        field->length = -1;
        return 0;
    }
    if (PyBytes_CheckExact(value)) {
        field->data = PyBytes_AS_STRING(value);
        field->length = PyBytes_GET_SIZE(value);
        return 0;
    }
    if (allow_str && PyUnicode_Check(value)) {
        field->data = PyUnicode_AsUTF8AndSize(value, &field->length);
        return field->data == NULL ? -1 : 0;
    }
    PyErr_Format(PyExc_TypeError, "%s must be bytes%s or None, not %.100s", what,
                 allow_str ? ", str" : "", Py_TYPE(value)->tp_name);
    return -1;
}

static inline Py_ssize_t
field_size(const Field *field)
{
    return field->length < 0 ? 1 : varint_size(field->length) + field->length;
}

static inline char *
write_field(char *out, const Field *field)
{
    out = write_varint(out, field->length);
    if (field->length > 0) {
        memcpy(out, field->data, (size_t)field->length);
        out += field->length;
    }
    return out;
}

static int
writer_init(RecordWriter *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"header_names", "limit", NULL};
    PyObject *names;
    Py_ssize_t limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!n", keywords, &PyTuple_Type, &names,
                                     &limit)) {
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    PyObject *encoded = PyTuple_New(count);
    if (encoded == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            Py_DECREF(encoded);
            PyErr_Format(PyExc_TypeError, "header names must be str, not %.100s",
                         Py_TYPE(name)->tp_name);
            return -1;
        }
        PyObject *utf8 = PyUnicode_AsUTF8String(name);
        if (utf8 == NULL) {
            Py_DECREF(encoded);
            return -1;
        }
        PyTuple_SET_ITEM(encoded, i, utf8);
    }
    Py_XSETREF(self->names, encoded);
    self->limit = limit;
    self->size = 0;
    self->count = 0;
    self->first_timestamp = self->max_timestamp = 0;
    self->closed = 0;
    return 0;
}

static void
writer_dealloc(RecordWriter *self)
{
    Py_XDECREF(self->names);
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static long long
now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* append(key, value, header_values, timestamp=None, /) -> offset delta, or None when the record
 * does not fit or the writer is closed. */
static PyObject *
writer_append(RecordWriter *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->names == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RecordWriter not initialised");
        return NULL;
    }
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError,
                        "append(key, value, header_values, timestamp=None) takes 3 or 4 arguments");
        return NULL;
    }
    /* The timestamp first: converting it may run Python code (__index__), which could close or
     * re-initialise this writer; nothing after it does. */
    long long timestamp;
    if (nargs == 4 && args[3] != Py_None) {
        timestamp = PyLong_AsLongLong(args[3]);
        if (timestamp == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else {
        timestamp = now_ms();
    }
    if (self->closed || self->count == INT_MAX) {
        Py_RETURN_NONE;
    }
    Field key, value;
    if (field_of(args[0], &key, 0, "key") < 0 || field_of(args[1], &value, 0, "value") < 0) {
        return NULL;
    }
    PyObject *values = args[2];
    Py_ssize_t header_count = PyTuple_GET_SIZE(self->names);
    if (!PyTuple_Check(values) || PyTuple_GET_SIZE(values) != header_count) {
        PyErr_Format(PyExc_ValueError, "header_values must be a tuple of %zd values",
                     header_count);
        return NULL;
    }
    /* The caller's timestamp minus the first: checked first, as a signed overflow would be
     * undefined behaviour (and the record's delta nonsense). */
    long long delta = 0;
    if (self->count > 0) {
        long long first = self->first_timestamp;
        if ((first < 0 && timestamp > LLONG_MAX + first) ||
            (first > 0 && timestamp < LLONG_MIN + first)) {
            PyErr_SetString(PyExc_OverflowError, "timestamp too far from the batch's first");
            return NULL;
        }
        delta = timestamp - first;
    }

    /* Headers are looked at twice (size, then write): their Fields are kept on the stack. */
    Field small[16];
    Field *headers = small;
    if (header_count > 16) {
        headers = PyMem_New(Field, header_count);
        if (headers == NULL) {
            return PyErr_NoMemory();
        }
    }
    Py_ssize_t body = 1 + varint_size(delta) + varint_size(self->count) + field_size(&key)
                      + field_size(&value) + varint_size(header_count);
    for (Py_ssize_t i = 0; i < header_count; i++) {
        if (field_of(PyTuple_GET_ITEM(values, i), &headers[i], 1, "a header value") < 0) {
            goto failed;
        }
        body += varint_size(PyBytes_GET_SIZE(PyTuple_GET_ITEM(self->names, i)))
                + PyBytes_GET_SIZE(PyTuple_GET_ITEM(self->names, i)) + field_size(&headers[i]);
    }
    Py_ssize_t required = varint_size(body) + body;
    /* Full when the record would reach the limit (aiokafka's builder refuses at >=, too). */
    if (self->count > 0 && self->size + required >= self->limit) {
        if (headers != small) {
            PyMem_Free(headers);
        }
        Py_RETURN_NONE;
    }
    /* The result first: once the record is written, nothing may fail (the caller would not
     * know the record is in the batch). */
    PyObject *offset = PyLong_FromLong(self->count);
    if (offset == NULL) {
        goto failed;
    }
    if (self->size + required > self->capacity) {
        /* The first record reserves the whole batch (up to FIRST_CAPACITY_MAX): growing from
         * 4 KiB by doubling copied a full batch's records once more on the way (realloc showed in
         * publishing's CPU profile). Pages never written are never touched. */
        Py_ssize_t capacity = self->capacity ? self->capacity
                              : self->limit < FIRST_CAPACITY_MAX ? self->limit
                                                                 : FIRST_CAPACITY_MAX;
        if (capacity < 64) capacity = 64;
        while (capacity < self->size + required) {
            if (capacity > PY_SSIZE_T_MAX / 2) {
                Py_DECREF(offset);
                PyErr_NoMemory();
                goto failed;
            }
            capacity *= 2;
        }
        char *grown = PyMem_Realloc(self->data, (size_t)capacity);
        if (grown == NULL) {
            Py_DECREF(offset);
            PyErr_NoMemory();
            goto failed;
        }
        self->data = grown;
        self->capacity = capacity;
    }
    char *out = write_varint(self->data + self->size, body);
    *out++ = 0; /* attributes: none are defined for records */
    out = write_varint(out, delta);
    out = write_varint(out, self->count);
    out = write_field(out, &key);
    out = write_field(out, &value);
    out = write_varint(out, header_count);
    for (Py_ssize_t i = 0; i < header_count; i++) {
        PyObject *name = PyTuple_GET_ITEM(self->names, i);
        Field name_field = {PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name)};
        out = write_field(out, &name_field);
        out = write_field(out, &headers[i]);
    }
    if (headers != small) {
        PyMem_Free(headers);
    }
    self->size = out - self->data;
    if (self->count == 0) {
        self->first_timestamp = self->max_timestamp = timestamp;
    }
    else if (timestamp > self->max_timestamp) {
        self->max_timestamp = timestamp;
    }
    self->count++;
    return offset;

failed:
    if (headers != small) {
        PyMem_Free(headers);
    }
    return NULL;
}

static PyObject *
writer_records(RecordWriter *self, PyObject *Py_UNUSED(ignored))
{
    return PyBytes_FromStringAndSize(self->data, self->size);
}

static PyObject *
writer_close(RecordWriter *self, PyObject *Py_UNUSED(ignored))
{
    self->closed = 1;
    Py_RETURN_NONE;
}

static PyMethodDef writer_methods[] = {
    {"append", (PyCFunction)(void (*)(void))writer_append, METH_FASTCALL,
     "append(key, value, header_values, timestamp=None, /): the record's offset delta, or None "
     "when it does not fit."},
    {"records", (PyCFunction)writer_records, METH_NOARGS, "The records written so far."},
    {"close", (PyCFunction)writer_close, METH_NOARGS, "Take no more records."},
    {NULL, NULL, 0, NULL},
};

/* Read-only attributes, straight from the struct. */
static PyMemberDef writer_members[] = {
    {"closed", T_BOOL, offsetof(RecordWriter, closed), READONLY, "Whether records are refused."},
    {"count", T_INT, offsetof(RecordWriter, count), READONLY, "Records written."},
    {"size", T_PYSSIZET, offsetof(RecordWriter, size), READONLY, "Bytes of records written."},
    {"first_timestamp", T_LONGLONG, offsetof(RecordWriter, first_timestamp), READONLY,
     "The first record's timestamp (ms), 0 before any."},
    {"max_timestamp", T_LONGLONG, offsetof(RecordWriter, max_timestamp), READONLY,
     "The latest record timestamp (ms), 0 before any."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RecordWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "agentflux.producers._records.RecordWriter",
    .tp_doc = "RecordWriter(header_names, limit): the records of one v2 record batch.",
    .tp_basicsize = sizeof(RecordWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)writer_init,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_methods = writer_methods,
    .tp_members = writer_members,
};

/* Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), which its default partitioner
 * hashes keys with: aiokafka's is pure Python, many times slower. */
static uint32_t
murmur2_of(const unsigned char *data, Py_ssize_t length)
{
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    Py_ssize_t i = 0;
    for (; i + 4 <= length; i += 4) {
        uint32_t k = (uint32_t)data[i] | ((uint32_t)data[i + 1] << 8) |
                     ((uint32_t)data[i + 2] << 16) | ((uint32_t)data[i + 3] << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length - i) {
    case 3:
        h ^= (uint32_t)data[i + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[i + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)data[i];
        h *= m;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static PyObject *
murmur2(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint32_t hash = murmur2_of(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(hash);
}

/* The default partitioner's choice among a topic's partitions (a list, sorted): one call per
 * published event instead of a Python function around murmur2. */
static PyObject *
key_partition(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyList_Check(args[1]) ||
        PyList_GET_SIZE(args[1]) == 0) {
        PyErr_SetString(PyExc_TypeError, "key_partition(key: bytes, partitions: non-empty list)");
        return NULL;
    }
    uint32_t hash = murmur2_of((const unsigned char *)PyBytes_AS_STRING(args[0]),
                               PyBytes_GET_SIZE(args[0]));
    Py_ssize_t count = PyList_GET_SIZE(args[1]);
    return Py_NewRef(PyList_GET_ITEM(args[1], (Py_ssize_t)(hash & 0x7FFFFFFFu) % count));
}

static PyMethodDef module_methods[] = {
    {"murmur2", (PyCFunction)murmur2, METH_O,
     "murmur2(data, /) -> int: Kafka's murmur2 hash of bytes, as an unsigned 32-bit int."},
    {"key_partition", (PyCFunction)(void (*)(void))key_partition, METH_FASTCALL,
     "key_partition(key, partitions, /): partitions[(murmur2(key) & 0x7FFFFFFF) % len(...)],\n"
     "the partition Kafka's default partitioner gives key among a topic's sorted partitions."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef records_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "agentflux.producers._records",
    .m_doc = "Kafka v2 records written from a tuple of header values (see _records.c).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__records(void)
{
    if (PyType_Ready(&RecordWriterType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&records_module);
    if (module == NULL) {
        return NULL;
    }
    /* INTERFACE: the calls Python makes into this module, as the Python side expects them
     * (see agentflux/_builds.py); raised with every change to them. */
    if (PyModule_AddIntConstant(module, "INTERFACE", 1) < 0 ||
        PyModule_AddObjectRef(module, "RecordWriter", (PyObject *)&RecordWriterType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

/* Kafka records read straight from a fetched record batch, without their headers until asked.
 *
 * aiokafka reads every record of a fetch into a DefaultRecord with all of its headers (one str,
 * one bytes and one tuple per header), then copies it into a ConsumerRecord dataclass. An
 * agentflux event carries eleven headers, so that is ~35 objects built and freed per record that
 * the runner never looks at: the largest cost of consuming after decoding itself. read_records
 * builds one small Record per record instead, with its key and value; its headers are read from
 * the batch when (if ever) someone asks for them, e.g. to dead-letter it.
 *
 * The format is Kafka's message format v2 (KIP-98): after the batch header (read on the Python
 * side, which also checks the CRC and decompresses), each record is
 *   length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
 *   keyLength varint, key, valueLength varint, value, headerCount varint,
 *   headers: (keyLength varint, key utf-8, valueLength varint, value)*
 * with zigzag varints. Malformed records raise ValueError (the caller raises aiokafka's
 * CorruptRecordException from it); the same checks as aiokafka's reader are made: every record's
 * length matches what it holds, the batch holds exactly its count of records and no extra bytes.
 * A header key that is not UTF-8 raises UnicodeDecodeError when the headers are read.
 *
 * Records hold only str, bytes, ints and tuples of those: they cannot be part of a reference
 * cycle, so they are not tracked by the garbage collector (one less cost per record). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <limits.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    PyObject *topic;
    PyObject *key;          /* bytes or None */
    PyObject *value;        /* bytes or None */
    PyObject *source;       /* the (decompressed) batch holding the headers */
    PyObject *headers;      /* NULL until read: a tuple of (str, bytes | None) */
    long long offset;
    long long timestamp;
    Py_ssize_t key_size;    /* -1 for a null key, as aiokafka reports it */
    Py_ssize_t value_size;
    Py_ssize_t headers_at;  /* where the first header starts in source */
    int partition;
    int timestamp_type;
    int header_count;
} Record;

static PyTypeObject RecordType;

typedef struct {
    const unsigned char *data;
    Py_ssize_t pos;
    Py_ssize_t end;
} Cursor;

/* A zigzag varint (up to 64 bits); -1 with ValueError set when it is cut short or too long. */
static int
read_varint(Cursor *c, int64_t *out)
{
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->pos >= c->end) {
            PyErr_SetString(PyExc_ValueError, "record batch ends inside a varint");
            return -1;
        }
        unsigned char byte = c->data[c->pos++];
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = (int64_t)(value >> 1) ^ -(int64_t)(value & 1);
            return 0;
        }
    }
    PyErr_SetString(PyExc_ValueError, "varint longer than 10 bytes");
    return -1;
}

/* base + delta into *out: 0, or -1 with ValueError when the sum leaves the 64-bit range. The
 * deltas come from the bytes read (attacker-controlled): a signed overflow would be undefined
 * behaviour, so the range is checked before adding. */
static int
add_delta(long long base, int64_t delta, const char *what, long long *out)
{
    if ((delta > 0 && base > LLONG_MAX - delta) || (delta < 0 && base < LLONG_MIN - delta)) {
        PyErr_Format(PyExc_ValueError, "record %s delta %lld out of range", what,
                     (long long)delta);
        return -1;
    }
    *out = base + delta;
    return 0;
}

/* The next `size` bytes as a new bytes object (None for -1), or NULL with ValueError. */
static PyObject *
read_nullable_bytes(Cursor *c, int64_t size)
{
    if (size < 0) Py_RETURN_NONE;
    if (size > c->end - c->pos) {
        PyErr_SetString(PyExc_ValueError, "record batch ends inside a record's key or value");
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)c->data + c->pos, (Py_ssize_t)size);
    c->pos += (Py_ssize_t)size;
    return bytes;
}

/* Steps over `count` headers, checking only that they fit (their text is read on demand). */
static int
skip_headers(Cursor *c, int64_t count)
{
    for (int64_t i = 0; i < count; i++) {
        int64_t key_size, value_size;
        if (read_varint(c, &key_size) < 0) return -1;
        if (key_size < 0) {
            PyErr_Format(PyExc_ValueError, "invalid negative header key size %lld",
                         (long long)key_size);
            return -1;
        }
        if (key_size > c->end - c->pos) goto cut;
        c->pos += (Py_ssize_t)key_size;
        if (read_varint(c, &value_size) < 0) return -1;
        if (value_size > 0) {
            if (value_size > c->end - c->pos) goto cut;
            c->pos += (Py_ssize_t)value_size;
        }
    }
    return 0;
cut:
    PyErr_SetString(PyExc_ValueError, "record batch ends inside a header");
    return -1;
}

static PyObject *
read_headers(Record *self)
{
    PyObject *headers = PyTuple_New(self->header_count);
    if (headers == NULL) return NULL;
    Cursor c = {(const unsigned char *)PyBytes_AS_STRING(self->source), self->headers_at,
                PyBytes_GET_SIZE(self->source)};
    for (int i = 0; i < self->header_count; i++) {
        int64_t key_size, value_size;
        PyObject *key = NULL, *value = NULL, *pair = NULL;
        /* Sizes were checked when the record was read: the varints and spans are in bounds. */
        if (read_varint(&c, &key_size) < 0) goto fail;
        key = PyUnicode_DecodeUTF8((const char *)c.data + c.pos, (Py_ssize_t)key_size, "strict");
        if (key == NULL) goto fail;
        c.pos += (Py_ssize_t)key_size;
        if (read_varint(&c, &value_size) < 0) goto fail_key;
        value = read_nullable_bytes(&c, value_size);
        if (value == NULL) goto fail_key;
        pair = PyTuple_Pack(2, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (pair == NULL) goto fail;
        PyTuple_SET_ITEM(headers, i, pair);
        continue;
    fail_key:
        Py_DECREF(key);
        goto fail;
    }
    return headers;
fail:
    Py_DECREF(headers);
    return NULL;
}

static PyObject *
Record_headers(Record *self, void *Py_UNUSED(closure))
{
    if (self->headers == NULL) {
        self->headers = read_headers(self);
        if (self->headers == NULL) return NULL;
    }
    return Py_NewRef(self->headers);
}

static PyObject *
Record_checksum(Record *Py_UNUSED(self), void *Py_UNUSED(closure))
{
    Py_RETURN_NONE;  /* message format v2 has no per-record checksum (aiokafka: None too) */
}

static void
Record_dealloc(Record *self)
{
    Py_XDECREF(self->topic);
    Py_XDECREF(self->key);
    Py_XDECREF(self->value);
    Py_XDECREF(self->source);
    Py_XDECREF(self->headers);
    PyObject_Free(self);
}

static PyObject *
Record_repr(Record *self)
{
    return PyUnicode_FromFormat("Record(topic=%R, partition=%d, offset=%lld, timestamp=%lld, "
                                "key=%R, value size=%zd)",
                                self->topic, self->partition, self->offset, self->timestamp,
                                self->key, self->value_size);
}

static PyMemberDef Record_members[] = {
    {"topic", T_OBJECT, offsetof(Record, topic), READONLY, "The topic it was read from."},
    {"partition", T_INT, offsetof(Record, partition), READONLY, "Its partition."},
    {"offset", T_LONGLONG, offsetof(Record, offset), READONLY, "Its offset."},
    {"timestamp", T_LONGLONG, offsetof(Record, timestamp), READONLY,
     "Its timestamp, ms since the epoch."},
    {"timestamp_type", T_INT, offsetof(Record, timestamp_type), READONLY,
     "0: the producer's create time, 1: the broker's log-append time."},
    {"key", T_OBJECT, offsetof(Record, key), READONLY, "Its key (bytes or None)."},
    {"value", T_OBJECT, offsetof(Record, value), READONLY, "Its value (bytes or None)."},
    {"serialized_key_size", T_PYSSIZET, offsetof(Record, key_size), READONLY,
     "The key's size in bytes, -1 for none."},
    {"serialized_value_size", T_PYSSIZET, offsetof(Record, value_size), READONLY,
     "The value's size in bytes, -1 for none."},
    {NULL},
};

static PyGetSetDef Record_getset[] = {
    {"headers", (getter)Record_headers, NULL,
     "Its headers, a tuple of (name, value) pairs, read from the batch on first use.", NULL},
    {"checksum", (getter)Record_checksum, NULL, "Always None (as in aiokafka, format v2).", NULL},
    {NULL},
};

static PyTypeObject RecordType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "agentflux.consumers._batches.Record",
    .tp_basicsize = sizeof(Record),
    .tp_dealloc = (destructor)Record_dealloc,
    .tp_repr = (reprfunc)Record_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One Kafka record: the attributes of aiokafka's ConsumerRecord, headers on demand.",
    .tp_members = Record_members,
    .tp_getset = Record_getset,
};

/* read_records(source, start, end, count, base_offset, first_timestamp, log_append_time,
 *              max_timestamp, topic, partition, min_offset) -> list[Record] */
static PyObject *
read_records(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *source, *topic;
    Py_ssize_t start, end, count;
    long long base_offset, first_timestamp, max_timestamp, min_offset;
    int log_append_time, partition;
    if (!PyArg_ParseTuple(args, "O!nnnLLpLUiL:read_records", &PyBytes_Type, &source, &start,
                          &end, &count, &base_offset, &first_timestamp, &log_append_time,
                          &max_timestamp, &topic, &partition, &min_offset)) {
        return NULL;
    }
    Cursor c = {(const unsigned char *)PyBytes_AS_STRING(source), start, end};
    if (start < 0 || end > PyBytes_GET_SIZE(source) || start > end || count < 0 ||
        count > end - start) {
        /* every record takes at least one byte: a larger count is corrupt, not a big batch */
        PyErr_SetString(PyExc_ValueError, "record count or start out of the batch's bounds");
        return NULL;
    }
    PyObject *records = PyList_New(0);
    if (records == NULL) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t length, attributes, timestamp_delta, offset_delta, key_size, value_size,
            header_count;
        if (read_varint(&c, &length) < 0) goto fail;
        Py_ssize_t body = c.pos;
        if (length < 0 || length > c.end - body) {
            PyErr_Format(PyExc_ValueError, "record length %lld does not fit its batch",
                         (long long)length);
            goto fail;
        }
        if (read_varint(&c, &attributes) < 0 || read_varint(&c, &timestamp_delta) < 0 ||
            read_varint(&c, &offset_delta) < 0) {
            goto fail;
        }
        long long offset, timestamp = max_timestamp;
        if (add_delta(base_offset, offset_delta, "offset", &offset) < 0 ||
            (!log_append_time &&
             add_delta(first_timestamp, timestamp_delta, "timestamp", &timestamp) < 0)) {
            goto fail;
        }
        Record *record = PyObject_New(Record, &RecordType);
        if (record == NULL) goto fail;
        record->topic = Py_NewRef(topic);
        record->key = record->value = record->headers = NULL;
        record->source = Py_NewRef(source);
        record->offset = offset;
        record->timestamp = timestamp;
        record->timestamp_type = log_append_time;
        record->partition = partition;
        if (read_varint(&c, &key_size) < 0 ||
            (record->key = read_nullable_bytes(&c, key_size)) == NULL ||
            read_varint(&c, &value_size) < 0 ||
            (record->value = read_nullable_bytes(&c, value_size)) == NULL ||
            read_varint(&c, &header_count) < 0) {
            Py_DECREF(record);
            goto fail;
        }
        record->key_size = key_size < 0 ? -1 : (Py_ssize_t)key_size;
        record->value_size = value_size < 0 ? -1 : (Py_ssize_t)value_size;
        if (header_count < 0 || header_count > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "invalid number of record headers %lld",
                         (long long)header_count);
            Py_DECREF(record);
            goto fail;
        }
        record->header_count = (int)header_count;
        record->headers_at = c.pos;
        if (skip_headers(&c, header_count) < 0) {
            Py_DECREF(record);
            goto fail;
        }
        if (c.pos - body != length) {
            PyErr_Format(PyExc_ValueError,
                         "invalid record size: expected to read %lld bytes in record payload, "
                         "but instead read %zd", (long long)length, c.pos - body);
            Py_DECREF(record);
            goto fail;
        }
        if (offset < min_offset) {  /* before the fetch position (a batch fetched from within) */
            Py_DECREF(record);
            continue;
        }
        int appended = PyList_Append(records, (PyObject *)record);
        Py_DECREF(record);
        if (appended < 0) goto fail;
    }
    if (c.pos != c.end) {
        PyErr_Format(PyExc_ValueError, "%zd bytes left in the batch after its %zd records",
                     c.end - c.pos, count);
        goto fail;
    }
    return records;
fail:
    Py_DECREF(records);
    return NULL;
}

static PyMethodDef batches_methods[] = {
    {"read_records", read_records, METH_VARARGS,
     "read_records(source, start, end, count, base_offset, first_timestamp, log_append_time, "
     "max_timestamp, topic, partition, min_offset) -> list[Record]\n\n"
     "The records of one batch, whose records section is source[start:end] (decompressed), "
     "skipping those before min_offset. Raises ValueError for a malformed batch."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef batches_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "agentflux.consumers._batches",
    .m_doc = "Kafka records read from a record batch without their headers until asked.",
    .m_size = -1,
    .m_methods = batches_methods,
};

PyMODINIT_FUNC
PyInit__batches(void)
{
    if (PyType_Ready(&RecordType) < 0) return NULL;
    PyObject *module = PyModule_Create(&batches_module);
    if (module == NULL) return NULL;
    /* INTERFACE: the calls Python makes into this module, as the Python side expects them
     * (see agentflux/_builds.py); raised with every change to them. */
    if (PyModule_AddIntConstant(module, "INTERFACE", 1) < 0 ||
        PyModule_AddObjectRef(module, "Record", (PyObject *)&RecordType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

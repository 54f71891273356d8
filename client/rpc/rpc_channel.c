/*
 * rpc_channel.c - channels and the helpers every call kind shares: metadata, packing,
 * status copying, the status-code mapping.
 *
 * A channel owns one grpc_channel and one grpc_init reference. It keeps no per-call state,
 * so any number of threads may start calls on it at once (the gRPC channel is
 * thread-safe and nothing here is mutated after sluice_rpc_channel_new).
 */
#include "client/rpc/rpc_internal.h"

#include "sluice/status.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_MESSAGE_BYTES ((size_t)4 << 20)

/* "Bearer <token>", or NULL when token is NULL or empty. */
static int make_auth_value(const char *token, char **out) {
    *out = NULL;
    if (token == NULL || token[0] == '\0') {
        return SLUICE_OK;
    }
    size_t len = strlen("Bearer ") + strlen(token) + 1;
    char *value = malloc(len);
    if (value == NULL) {
        return SLUICE_ENOMEM;
    }
    snprintf(value, len, "Bearer %s", token);
    /* A token gRPC would refuse to send fails here, not on every call. */
    if (!grpc_header_nonbin_value_is_legal(grpc_slice_from_static_string(value))) {
        free(value);
        return SLUICE_EINVAL;
    }
    *out = value;
    return SLUICE_OK;
}

static grpc_channel_credentials *make_credentials(const sluice_rpc_channel_opts *opts) {
    if (opts == NULL || !opts->use_tls) {
        return grpc_insecure_credentials_create();
    }
    return grpc_ssl_credentials_create(opts->tls_root_certs_pem, NULL, NULL, NULL);
}

static void add_int_arg(grpc_arg *args, size_t *n, const char *key, size_t value) {
    args[*n].type = GRPC_ARG_INTEGER;
    args[*n].key = (char *)key;
    args[(*n)++].value.integer = value > INT_MAX ? INT_MAX : (int)value;
}

/* Creates the grpc_channel; the caller holds a grpc_init reference. */
static int open_channel(const char *target, const sluice_rpc_channel_opts *opts,
                        grpc_channel **out) {
    size_t max = opts != NULL && opts->max_message_bytes ? opts->max_message_bytes
                                                         : DEFAULT_MAX_MESSAGE_BYTES;
    if (max > INT_MAX) {
        return SLUICE_EINVAL;
    }
    /* grpc_channel_create copies the arguments: the name is only borrowed. */
    const char *name = opts != NULL && opts->use_tls ? opts->tls_server_name : NULL;
    grpc_arg args[6];
    size_t n = 0;
    add_int_arg(args, &n, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, max);
    add_int_arg(args, &n, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, max);
    if (opts != NULL && opts->keepalive_time_ms) {
        add_int_arg(args, &n, GRPC_ARG_KEEPALIVE_TIME_MS, opts->keepalive_time_ms);
        add_int_arg(args, &n, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
        if (opts->keepalive_timeout_ms) {
            add_int_arg(args, &n, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, opts->keepalive_timeout_ms);
        }
    }
    if (name != NULL) {
        args[n].type = GRPC_ARG_STRING;
        args[n].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[n++].value.string = (char *)name;
    }
    grpc_channel_credentials *creds = make_credentials(opts);
    int rc = SLUICE_ENOMEM;
    if (creds != NULL) {
        grpc_channel_args chargs = {.num_args = n, .args = args};
        *out = grpc_channel_create(target, creds, &chargs);
        grpc_channel_credentials_release(creds);
        rc = *out != NULL ? SLUICE_OK : SLUICE_EINVAL;
    }
    return rc;
}

int sluice_rpc_channel_new(const char *target, const sluice_rpc_channel_opts *opts,
                           sluice_rpc_channel **out) {
    if (out == NULL) {
        return SLUICE_EINVAL;
    }
    *out = NULL;
    if (target == NULL || target[0] == '\0') {
        return SLUICE_EINVAL;
    }
    sluice_rpc_channel *ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        return SLUICE_ENOMEM;
    }
    int rc = make_auth_value(opts != NULL ? opts->bearer_token : NULL, &ch->auth_value);
    if (rc != SLUICE_OK) {
        free(ch);
        return rc;
    }
    grpc_init();
    rc = open_channel(target, opts, &ch->channel);
    if (rc != SLUICE_OK) {
        grpc_shutdown();
        free(ch->auth_value);
        free(ch);
        return rc;
    }
    *out = ch;
    return SLUICE_OK;
}

void sluice_rpc_channel_free(sluice_rpc_channel *ch) {
    if (ch == NULL) {
        return;
    }
    grpc_channel_destroy(ch->channel);
    free(ch->auth_value);
    free(ch);
    grpc_shutdown();
}

int sluice_rpc_status_to_error(int grpc_code) {
    switch (grpc_code) {
    case GRPC_STATUS_OK:
        return SLUICE_OK;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_FAILED_PRECONDITION:
    case GRPC_STATUS_OUT_OF_RANGE:
        return SLUICE_EINVAL;
    case GRPC_STATUS_NOT_FOUND:
        return SLUICE_ENOTFOUND;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return SLUICE_ELIMIT;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return SLUICE_ETIMEDOUT;
    case GRPC_STATUS_CANCELLED:
        return SLUICE_ECANCELLED;
    case GRPC_STATUS_UNAVAILABLE:
        return SLUICE_EUNAVAILABLE;
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_PERMISSION_DENIED:
        return SLUICE_EAUTH;
    case GRPC_STATUS_UNIMPLEMENTED:
        return SLUICE_EUNIMPLEMENTED;
    default:
        return SLUICE_EINTERNAL;
    }
}

void rpc_metadata_init(rpc_metadata *md, const sluice_rpc_channel *ch) {
    memset(md, 0, sizeof(*md));
    if (ch->auth_value != NULL) {
        md->items[0].key = grpc_slice_from_static_string("authorization");
        md->items[0].value = grpc_slice_from_copied_string(ch->auth_value);
        md->count = 1;
    }
}

void rpc_metadata_cleanup(rpc_metadata *md) {
    for (size_t i = 0; i < md->count; i++) {
        grpc_slice_unref(md->items[i].value);
    }
    md->count = 0;
}

bool rpc_same_type(const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *want) {
    const ProtobufCMessageDescriptor *d = msg != NULL ? msg->descriptor : NULL;
    if (d == NULL || want == NULL || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) {
        return false;
    }
    return d == want || strcmp(d->name, want->name) == 0;
}

bool rpc_same_method(const sluice_rpc_method *a, const sluice_rpc_method *b) {
    return a == b || (a != NULL && b != NULL && strcmp(a->path, b->path) == 0);
}

gpr_timespec rpc_deadline_ms(int64_t timeout_ms) {
    if (timeout_ms < 0) {
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    }
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

grpc_call *rpc_create_call(sluice_rpc_channel *ch, const sluice_rpc_method *m,
                           const sluice_rpc_call_opts *opts, grpc_completion_queue *cq) {
    gpr_timespec deadline = opts != NULL && opts->timeout_ms > 0
                                ? rpc_deadline_ms((int64_t)opts->timeout_ms)
                                : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    /* The call keeps its own reference to the path, so tables need not be static. */
    grpc_slice path = grpc_slice_from_copied_string(m->path);
    grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path,
                                               NULL, deadline, NULL);
    grpc_slice_unref(path);
    return call;
}

int rpc_pack(const ProtobufCMessage *msg, grpc_byte_buffer **out) {
    *out = NULL;
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > UINT32_MAX) {
        return SLUICE_ELIMIT; /* a gRPC message length is 32 bits */
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return SLUICE_ENOMEM;
    }
    protobuf_c_message_pack(msg, buf);
    grpc_slice slice = grpc_slice_new(buf, len, free);
    *out = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return SLUICE_OK;
}

/* protobuf-c's unpack returns NULL both for bad input and for a failed allocation; an
 * allocator that records failures tells them apart. Memory still comes from malloc, so
 * callers free with the default allocator (protobuf_c_message_free_unpacked(m, NULL)). */
static void *recording_alloc(void *data, size_t size) {
    void *p = malloc(size);
    if (p == NULL) {
        *(bool *)data = true;
    }
    return p;
}

static void recording_free(void *data, void *p) {
    (void)data;
    free(p);
}

int rpc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb, ProtobufCMessage **out) {
    *out = NULL;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        return SLUICE_EPROTO; /* undecompressable */
    }
    grpc_slice flat = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    bool oom = false;
    ProtobufCAllocator alloc = {recording_alloc, recording_free, &oom};
    *out =
        protobuf_c_message_unpack(d, &alloc, GRPC_SLICE_LENGTH(flat), GRPC_SLICE_START_PTR(flat));
    grpc_slice_unref(flat);
    if (*out == NULL) {
        return oom ? SLUICE_ENOMEM : SLUICE_EPROTO;
    }
    return SLUICE_OK;
}

/* Copies at most cap-1 bytes, never ending inside a UTF-8 sequence, and NUL-terminates. */
static void copy_details(char *dst, size_t cap, const uint8_t *src, size_t len) {
    const uint8_t *nul = memchr(src, '\0', len);
    if (nul != NULL) {
        len = (size_t)(nul - src);
    }
    if (len >= cap) {
        len = cap - 1;
        while (len > 0 && (src[len] & 0xC0) == 0x80) {
            len--; /* src[len] continues a character: drop that whole character */
        }
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

void rpc_status_set(sluice_rpc_status *st, grpc_status_code code, grpc_slice details) {
    if (st == NULL) {
        return;
    }
    st->code = (int)code;
    copy_details(st->details, sizeof(st->details), GRPC_SLICE_START_PTR(details),
                 GRPC_SLICE_LENGTH(details));
}

void rpc_status_local(sluice_rpc_status *st, int err) {
    if (st == NULL) {
        return;
    }
    st->code = GRPC_STATUS_UNKNOWN;
    const char *what = sluice_strerror(err);
    copy_details(st->details, sizeof(st->details), (const uint8_t *)what, strlen(what));
}

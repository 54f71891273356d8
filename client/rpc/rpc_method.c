/*
 * rpc_method.c - lookups in the generated method tables (rpc_method.h).
 */
#include "client/rpc/rpc_method.h"

#include <string.h>

const sluice_rpc_method *sluice_rpc_service_find(const sluice_rpc_service *svc, const char *path,
                                                 size_t path_len) {
    if (svc == NULL || path == NULL) {
        return NULL;
    }
    /* Services have a handful of methods: a linear scan beats any index. */
    for (size_t i = 0; i < svc->n_methods; i++) {
        const char *p = svc->methods[i].path;
        if (p != NULL && strlen(p) == path_len && memcmp(p, path, path_len) == 0) {
            return &svc->methods[i];
        }
    }
    return NULL;
}

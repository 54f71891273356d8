/*
 * emit.h - writes the .sluice.h and .sluice.c of one file from its model.
 *
 * The header declares, per service, the method table (sluice_rpc_method[]), the service
 * table, an index enum and, per method, an addressable `<svc>__<method>__method` name and
 * typed stubs over client/rpc/rpc.h for the method's call kind. The source defines them;
 * the stubs only cast between the typed messages and ProtobufCMessage. The output compiles
 * cleanly under the project's warning set. Pure functions of the model; any thread.
 */
#ifndef SLUICE_CODEGEN_EMIT_H
#define SLUICE_CODEGEN_EMIT_H

#include "client/codegen/model.h"
#include "client/codegen/text.h"

/* Appends the header for f to out (check out->failed afterwards). */
void emit_header(const cg_file *f, text *out);
/* Appends the source for f to out (check out->failed afterwards). */
void emit_source(const cg_file *f, text *out);

#endif

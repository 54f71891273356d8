/*
 * models.h - choosing a model among a session's models (pure).
 *
 * Weighted random choice that skips blocklisted and excluded models. Weights are relative
 * and need not sum to 1. If every candidate has weight 0 the choice is uniform among
 * them; otherwise weight-0 models are never picked at random but remain candidates when
 * nothing with a positive weight is left (fallback-only models). Randomness comes from the
 * caller's xorshift state so tests are deterministic.
 */
#ifndef SLUICE_DISPATCH_MODELS_H
#define SLUICE_DISPATCH_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Picks an index in [0, n) among models with blocked[i] false and i != exclude (pass -1
 * to exclude nothing). Returns -1 when no candidate is left. */
int models_choose(const double *weights, const bool *blocked, size_t n, int exclude, uint64_t *rng);

#endif

/* Weighted model choice (see models.h). */
#include "models.h"

#include "retry.h"

static bool candidate(const bool *blocked, int exclude, size_t i) {
    return !blocked[i] && (int)i != exclude;
}

int models_choose(const double *weights, const bool *blocked, size_t n, int exclude,
                  uint64_t *rng) {
    double total = 0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!candidate(blocked, exclude, i))
            continue;
        count++;
        if (weights[i] > 0)
            total += weights[i];
    }
    if (count == 0)
        return -1;
    if (total > 0) {
        double x = retry_rng_unit(rng) * total;
        int last = -1;
        for (size_t i = 0; i < n; i++) {
            if (!candidate(blocked, exclude, i) || weights[i] <= 0)
                continue;
            last = (int)i;
            if (x < weights[i])
                return (int)i;
            x -= weights[i];
        }
        return last; /* float rounding left x a hair above the last weight */
    }
    size_t k = (size_t)(retry_rng_unit(rng) * (double)count);
    for (size_t i = 0; i < n; i++) {
        if (!candidate(blocked, exclude, i))
            continue;
        if (k-- == 0)
            return (int)i;
    }
    return -1;
}

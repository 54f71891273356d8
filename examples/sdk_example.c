/*
 * sdk_example.c - the C SDK in a page: a batch in input order, then start / wait_for.
 *
 *   cc sdk_example.c $(pkg-config --cflags --libs sluice) -o sdk_example
 *   ./sdk_example 127.0.0.1:50051 gpt-4.1-mini
 */
#include <sluice/sluice.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *target = argc > 1 ? argv[1] : "127.0.0.1:50051";
    sluice_model model = {.name = argc > 2 ? argv[2] : "gpt-4.1-mini", .weight = 1};
    sluice_client_options opts = {.models = &model, .n_models = 1, .max_attempts = 5};
    sluice_client *client;
    if (sluice_client_new(target, &opts, &client) != SLUICE_OK)
        return fprintf(stderr, "sluice: %s\n", sluice_last_error()), 1;
    if (sluice_client_open(client) != SLUICE_OK) {
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
        sluice_client_free(client);
        return 1;
    }

    /* process_prompts: results come back in input order */
    const char *questions[] = {"What is 2 + 2?", "Name a prime number.", "Say hello."};
    sluice_prompt *prompts[3];
    for (int i = 0; i < 3; i++)
        prompts[i] = sluice_prompt_text(questions[i]);
    sluice_response **answers;
    if (sluice_process_prompts(client, prompts, 3, NULL, &answers) != SLUICE_OK) {
        fprintf(stderr, "batch: %s\n", sluice_last_error());
        return 1;
    }
    for (int i = 0; i < 3; i++)
        printf("%s -> %s\n", questions[i],
               sluice_response_is_error(answers[i]) ? sluice_response_error_message(answers[i])
                                                    : sluice_response_completion(answers[i]));
    sluice_responses_free(answers, 3);

    /* start_nowait + wait_for: a durable task, answered later */
    sluice_prompt *p = sluice_prompt_new();
    sluice_prompt_system(p, "Answer in one word.");
    sluice_prompt_user(p, "What colour is the sky?");
    char *task_id;
    sluice_response *r;
    if (sluice_start_nowait(client, p, &task_id) == SLUICE_OK &&
        sluice_wait_for(client, task_id, 60000, &r) == SLUICE_OK) {
        printf("%s -> %s (model %s, cost $%.6f)\n", task_id, sluice_response_completion(r),
               sluice_response_model_used(r), sluice_response_cost(r));
        sluice_response_free(r);
        free(task_id);
    }

    sluice_tracker totals;
    sluice_client_close(client, &totals);
    printf("%llu prompts, %llu succeeded, %llu cached, $%.6f\n", (unsigned long long)totals.total,
           (unsigned long long)totals.succeeded, (unsigned long long)totals.cached, totals.cost);
    for (int i = 0; i < 3; i++)
        sluice_prompt_free(prompts[i]);
    sluice_prompt_free(p);
    sluice_client_free(client);
    return 0;
}

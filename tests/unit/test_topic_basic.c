/* Unit tests: a SubscriptionTopic as an R4 Basic resource, and back. */
#include <string.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_topic.h"
#include "../../src/core/fs_topic_basic.h"

#ifndef TOPICS_DIR
#define TOPICS_DIR "conf/topics"
#endif

static json_object *load(const char *name)
{
    const char *dir = getenv("FHIRSUB_TOPICS_DIR") ? getenv("FHIRSUB_TOPICS_DIR") : TOPICS_DIR;
    fs_topic_t *t = NULL;
    json_object *j = NULL;
    const char *err = NULL;
    ck_assert_msg(fs_topic_load_file(&t, pool, apr_pstrcat(pool, dir, "/", name, NULL), &err)
                  == APR_SUCCESS, "%s", err);
    ck_assert_int_eq(fs_json_parse(&j, pool, t->json, strlen(t->json), &err), APR_SUCCESS);
    return j;
}

static json_object *first_ext(json_object *basic, const char *url)
{
    json_object *exts = fs_json_get_typed(basic, "extension", json_type_array);
    size_t i;
    for (i = 0; exts && i < json_object_array_length(exts); ++i) {
        json_object *e = json_object_array_get_idx(exts, i);
        if (!strcmp(fs_json_get_str(e, "url"), url)) return e;
    }
    return NULL;
}

START_TEST(basic_shape)
{
    json_object *basic = fs_topic_to_basic(pool, load("encounter-end.json")), *e, *nested;
    json_object *coding = json_object_array_get_idx(fs_json_get_typed(fs_json_get_typed(
        basic, "code", json_type_object), "coding", json_type_array), 0);

    ck_assert_str_eq(fs_json_get_str(basic, "resourceType"), "Basic");
    ck_assert_str_eq(fs_json_get_str(coding, "system"), "http://hl7.org/fhir/fhir-types");
    ck_assert_str_eq(fs_json_get_str(coding, "code"), "SubscriptionTopic");
    e = first_ext(basic, "http://hl7.org/fhir/5.0/StructureDefinition/"
                         "extension-SubscriptionTopic.url");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(fs_json_get_str(e, "valueUri"),
                     "http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/"
                     "r4-encounter-complete");
    e = first_ext(basic, "http://hl7.org/fhir/5.0/StructureDefinition/"
                         "extension-SubscriptionTopic.resourceTrigger");
    ck_assert_ptr_nonnull(e);
    nested = fs_json_get_typed(e, "extension", json_type_array);
    ck_assert_ptr_nonnull(nested);
    ck_assert_ptr_nonnull(first_ext(e, "queryCriteria"));
    ck_assert_ptr_nonnull(fs_json_get_str(first_ext(first_ext(e, "queryCriteria"),
                                                    "previous"), "valueString"));
    ck_assert_ptr_nonnull(fs_json_get_typed(first_ext(first_ext(e, "queryCriteria"),
                                                      "requireBoth"), "valueBoolean",
                                            json_type_boolean));
}
END_TEST

/* What fs_topic reads back from the Basic form is the same topic. */
START_TEST(basic_round_trip)
{
    static const char *const files[] = {
        "encounter-end.json", "encounter-start.json", "patient-change.json",
        "observation-change.json", NULL
    };
    const char *const *f;
    for (f = files; *f; ++f) {
        json_object *topic = load(*f);
        fs_topic_t *orig = NULL, *back = NULL;
        const char *err = NULL;
        ck_assert_int_eq(fs_topic_from_json(&orig, pool, topic, *f, &err), APR_SUCCESS);
        ck_assert_msg(fs_topic_from_json(&back, pool, fs_topic_to_basic(pool, topic), *f,
                                         &err) == APR_SUCCESS, "%s: %s", *f, err);
        ck_assert_int_eq(back->basic, 1);
        ck_assert_str_eq(back->url, orig->url);
        ck_assert_int_eq(back->triggers->nelts, orig->triggers->nelts);
        ck_assert_int_eq(back->can_filter_by->nelts, orig->can_filter_by->nelts);
        ck_assert_int_eq(APR_ARRAY_IDX(back->triggers, 0, fs_topic_trigger_t *)->interactions,
                         APR_ARRAY_IDX(orig->triggers, 0, fs_topic_trigger_t *)->interactions);
    }
}
END_TEST

static Suite *basic_suite(void)
{
    Suite *s = suite_create("topic_basic");
    TCase *tc = fs_check_tcase("basic");
    tcase_add_test(tc, basic_shape);
    tcase_add_test(tc, basic_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(basic_suite());
}

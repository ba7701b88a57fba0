/* weights_h5.c: see weights_h5.h. */
#include "weights_h5.h"
#include "h5_util.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

int weights_read_h5(hid_t file, const char *file_label, const char *group,
                    const struct param_table *params, float *host, int trainable_only, char *err,
                    size_t errlen)
{
    for (int i = 0; i < params->count; i++) {
        const struct param *p = &params->items[i];
        if (trainable_only && !params_is_trainable(p->kind))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s/%s", group, p->name);
        int nd;
        size_t shape[H5U_MAX_DIMS];
        if (h5u_shape(file, file_label, name, &nd, shape, err, errlen) != 0)
            return -1;
        int same = nd == p->ndim;
        for (int d = 0; same && d < nd; d++)
            same = shape[d] == (size_t)p->shape[d];
        if (!same) {
            char want[64] = "", got[64] = "";
            for (int d = 0; d < p->ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? "," : "",
                         p->shape[d]);
            for (int d = 0; d < nd; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", d ? "," : "",
                         shape[d]);
            return util_error(err, errlen,
                              "%s: weight '%s' has shape (%s), the model expects (%s): was it "
                              "written for another model configuration?",
                              file_label, name, got, want);
        }
        if (host &&
            h5u_read_floats(file, file_label, name, host + p->offset, p->count, err, errlen))
            return -1;
    }
    return 0;
}

int weights_write_h5(hid_t file, const char *file_label, const char *group,
                     const struct param_table *params, const float *host, int trainable_only,
                     char *err, size_t errlen)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    int rc = 0;
    for (int i = 0; i < params->count && rc == 0; i++) {
        const struct param *p = &params->items[i];
        if (trainable_only && !params_is_trainable(p->kind))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s/%s", group, p->name);
        hsize_t dims[4];
        for (int d = 0; d < p->ndim; d++)
            dims[d] = (hsize_t)p->shape[d];
        hid_t sp = H5Screate_simple(p->ndim, dims, NULL);
        hid_t ds = H5Dcreate2(file, name, H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0 ||
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host + p->offset) < 0)
            rc = util_error(err, errlen, "%s: cannot write weight '%s'", file_label, name);
        if (ds >= 0)
            H5Dclose(ds);
        H5Sclose(sp);
    }
    H5Pclose(lcpl);
    return rc;
}

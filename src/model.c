/* model.c -- placeholder; replaced by the model object. */
#include "internal.h"

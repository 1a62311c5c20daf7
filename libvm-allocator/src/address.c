/* placeholder until the library lands */
#include <stddef.h>
typedef int cvmm_placeholder_address_t;

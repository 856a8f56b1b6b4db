// rodrigues.h — series-guarded Rodrigues coefficients shared by the plane kernel and the reference lift.
#ifndef GRAPE_PE_RODRIGUES_H
#define GRAPE_PE_RODRIGUES_H

#include "grape.h"

// c = {S1, S2, dS1/dw, dS2/dw} at w = z²: S1 = sin z / z, S2 = (1 − cos z)/z² (Taylor below |z| = 1e-2).
void rodrigues_coeffs(double w, double c[4]);

#endif

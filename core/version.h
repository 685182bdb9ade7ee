/* The version every xedge program prints with --version. */
#ifndef XEDGE_VERSION_H
#define XEDGE_VERSION_H

#define XEDGE_VERSION "0.2.0"

#endif
